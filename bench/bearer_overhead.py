"""Bearer injection overhead: plain httpx vs whop_oauth's UserTokenAuth vs authlib.

    python -m bench.bearer_overhead [--requests 20000] [--rounds 5]

Every variant sends the same GETs over the same transport, alternating rounds in one
process; the table prints medians and the ratio to plain httpx with a static header.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from whop_oauth import OAuthClient, Token, TokenManager, whop_metadata
from whop_oauth.stores import generate_encryption_key, open_store

from ._harness import alternate, loopback_server, machine_line, print_table

ISSUER = "https://bench.example"
ACCESS = "bench-access-token"
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200)


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="ok")


def _authlib_client(
    transport: httpx.AsyncBaseTransport, limits: httpx.Limits
) -> httpx.AsyncClient:
    with warnings.catch_warnings():
        # authlib 1.8+ warns when it falls back to plain httpx; we measure exactly that path.
        warnings.simplefilter("ignore")
        from authlib.integrations.httpx_client import AsyncOAuth2Client
    token = {"access_token": ACCESS, "token_type": "Bearer", "expires_at": time.time() + 86400}
    return AsyncOAuth2Client(client_id="app_bench", token=token, transport=transport,
                            limits=limits)  # type: ignore[no-any-return]


def _sequential(client: httpx.AsyncClient, url: str, n: int) -> Callable[[], Awaitable[None]]:
    async def go() -> None:
        for _ in range(n):
            (await client.get(url)).raise_for_status()

    return go


def _concurrent(
    client: httpx.AsyncClient, url: str, n: int, width: int
) -> Callable[[], Awaitable[None]]:
    async def worker(count: int) -> None:
        for _ in range(count):
            (await client.get(url)).raise_for_status()

    async def go() -> None:
        await asyncio.gather(*(worker(n // width) for _ in range(width)))

    return go


async def _compare(label: str, transport_factory: Callable[[], httpx.AsyncBaseTransport],
                   url: str, requests: int, rounds: int, db: Path) -> None:
    metadata = whop_metadata(ISSUER)
    store = open_store(f"sqlite:///{db}", encryption_keys=[generate_encryption_key()])
    oauth = OAuthClient(client_id="app_bench", redirect_uri="https://bench.example/cb",
                        provider=metadata)
    manager = TokenManager(oauth, store)
    await manager.save(Token(access_token=ACCESS, expires_at=time.time() + 86400,
                             refresh_token="bench-refresh"), user="user_bench")
    limits = LIMITS
    plain = httpx.AsyncClient(transport=transport_factory(), limits=limits,
                              headers={"Authorization": f"Bearer {ACCESS}"})
    ours = httpx.AsyncClient(transport=transport_factory(), limits=limits,
                             auth=manager.auth(user="user_bench", allowed_origins=[url]))
    theirs = _authlib_client(transport_factory(), limits)
    clients = {"(a) httpx + static header": plain, "(b) whop_oauth UserTokenAuth": ours,
               "(c) authlib AsyncOAuth2Client": theirs}
    try:
        per_round = requests // rounds
        for mode, make in (("one at a time", lambda c: _sequential(c, url, per_round)),
                           ("200 concurrent", lambda c: _concurrent(c, url, per_round, 200))):
            variants = {name: make(c) for name, c in clients.items()}
            for run in variants.values():  # warm-up: connections, caches
                await run()
            series = await alternate(variants, rounds=rounds)
            print_table(f"{label}, {mode}: {requests} GETs in {rounds} rounds", series,
                        requests=per_round, floor="(a) httpx + static header")
    finally:
        for c in clients.values():
            await c.aclose()
        await oauth.aclose()
        await store.aclose()


async def main(requests: int, rounds: int) -> None:
    print(f"Bearer injection overhead — {machine_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        await _compare("MockTransport (pure overhead)", lambda: httpx.MockTransport(_ok),
                       f"{ISSUER}/api/v1/me", requests, rounds, Path(tmp) / "mock.db")
        with loopback_server() as base:
            # Limits live on the transport: httpx ignores a client's limits= beside one.
            await _compare("loopback HTTP server",
                           lambda: httpx.AsyncHTTPTransport(limits=LIMITS),
                           f"{base}/api/v1/me", requests, rounds, Path(tmp) / "loop.db")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
