"""Refresh storm: many callers ask for one user's expired token at once.

    python -m bench.refresh_storm [--callers 1000] [--rounds 5] [--only postgres,redis]

For each backend, with 1 process and with 4 processes (the callers split between
them), against a MockWhop on a loopback port that rotates refresh tokens and
answers a replayed one with ``invalid_grant``: refresh calls per storm (the goal is
1), errors, and how long callers waited (p50 / p99 over every caller of every round).
The memory store is per-process, so it has no 4-process row. The last rows use
access tokens that live 10 s, shorter than the 60 s ``leeway``: a worker that gets
the lock after another refreshed must use that token, not refresh it again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx

from bench._harness import machine_line, percentile
from bench._store_support import postgres_server, redis_server
from whop_oauth import OAuthClient, TokenManager, generate_encryption_key, open_store
from whop_oauth import whop_metadata as metadata_for
from whop_oauth.testing import MockWhop

USER = "user_mock1"


def oauth_client(issuer: str, http: httpx.AsyncClient) -> OAuthClient:
    return OAuthClient(
        client_id="app_mock",
        redirect_uri="http://127.0.0.1/callback",
        provider=metadata_for(issuer),
        http_client=http,
        max_retries=0,
    )


async def worker(store_url: str, issuer: str, callers: int) -> None:
    """One storm process: set up, say ready, wait for 'go', run the callers, report."""
    store = open_store(store_url, encryption_keys=[os.environ["BENCH_KEY"]])
    async with httpx.AsyncClient() as http:
        manager = TokenManager(oauth_client(issuer, http), store)
        if store_url == "memory://":  # a per-process store: this process signs in itself
            await sign_in_expired(issuer, manager)
        warm = manager.key(user="warm-up")  # a running app's connections are warm
        await asyncio.gather(*(store.get(warm) for _ in range(min(callers, 64))))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        waits: list[float] = []
        errors: Counter[str] = Counter()

        async def call() -> None:
            started = time.perf_counter()
            try:
                await manager.access_token(user=USER)
            except Exception as error:
                errors[type(error).__name__] += 1
            waits.append(time.perf_counter() - started)

        await asyncio.gather(*(call() for _ in range(callers)))
    await store.aclose()
    print(json.dumps({"waits": waits, "errors": errors}), flush=True)


async def sign_in_expired(issuer: str, manager: TokenManager) -> None:
    """A fresh grant through the code flow, stored as if its access token had expired."""
    async with httpx.AsyncClient() as http:
        client = oauth_client(issuer, http)
        flow = client.authorization_request()
        location = (await http.get(flow.url)).headers["location"]
        token = await client.complete_authorization(httpx.URL(location).query.decode(), flow)
    await manager.save(replace(token, expires_at=time.time() - 1), user=USER)


async def prepare(issuer: str, store_url: str, key: str) -> None:
    store = open_store(store_url, encryption_keys=[key])
    async with httpx.AsyncClient() as http:
        await sign_in_expired(issuer, TokenManager(oauth_client(issuer, http), store))
    await store.aclose()


def storm(
    mock: MockWhop, store_url: str, key: str, processes: int, callers: int
) -> dict[str, object]:
    """One storm; returns refresh calls, errors and the callers' waits."""
    if store_url != "memory://":
        asyncio.run(prepare(mock.issuer, store_url, key))
    env = {**os.environ, "BENCH_KEY": key}
    args = [sys.executable, "-m", "bench.refresh_storm", "--worker", store_url, mock.issuer]
    procs = [
        subprocess.Popen(
            [*args, str(callers // processes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    before = mock.stats
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    waits: list[float] = []
    errors: Counter[str] = Counter()
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        result = json.loads(out.strip().splitlines()[-1])
        waits += result["waits"]
        errors.update(result["errors"])
    after = mock.stats
    return {
        "refreshes": after.token_refresh - before.token_refresh,
        "invalid_grant": after.invalid_grant - before.invalid_grant,
        "errors": sum(errors.values()),
        "waits": waits,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=1000, help="callers per storm")
    parser.add_argument("--rounds", type=int, default=5, help="storms per row")
    parser.add_argument("--only", help="comma-separated backends (default: all)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, issuer, callers = args.worker
        asyncio.run(worker(url, issuer, int(callers)))
        return
    print(f"Refresh storm: {args.callers} callers on one expired token — {machine_line()}")
    print(f"  {'backend':<8} {'token':>6} {'procs':>5} {'storms':>6} {'refresh calls':>14} "
          f"{'errors':>7} {'invalid_grant':>13} {'wait p50':>9} {'wait p99':>9}")  # fmt: skip
    key = generate_encryption_key()
    with (
        tempfile.TemporaryDirectory() as tmp,
        redis_server() as redis_url,
        postgres_server() as postgres_url,
        MockWhop.on_free_port() as hour_mock,
        MockWhop.on_free_port(access_token_ttl=10) as short_mock,
    ):
        sqlite_url = f"sqlite:///{Path(tmp) / 'tokens.db'}"
        rows = [("memory", "memory://", 1, hour_mock)]
        for processes in (1, 4):
            rows += [("sqlite", sqlite_url, processes, hour_mock)]
            rows += [("redis", redis_url, processes, hour_mock)]
            rows += [("postgres", postgres_url, processes, hour_mock)]
        rows.sort(key=lambda r: (r[2], r[0]))
        for processes in (2, 4):
            rows += [("sqlite", sqlite_url, processes, short_mock)]
            rows += [("redis", redis_url, processes, short_mock)]
            rows += [("postgres", postgres_url, processes, short_mock)]
        if args.only:
            rows = [row for row in rows if row[0] in args.only.split(",")]
        for backend, url, processes, mock in rows:
            results = [storm(mock, url, key, processes, args.callers) for _ in range(args.rounds)]
            waits = [w for r in results for w in r["waits"]]  # type: ignore[attr-defined]
            refreshes = "/".join(str(r["refreshes"]) for r in results)
            life = "10 s" if mock is short_mock else "1 h"
            print(
                f"  {backend:<8} {life:>6} {processes:>5} {args.rounds:>6} {refreshes:>14} "
                f"{sum(r['errors'] for r in results):>7} "  # type: ignore[misc]
                f"{sum(r['invalid_grant'] for r in results):>13} "  # type: ignore[misc]
                f"{percentile(waits, 50) * 1e3:>7.1f}ms {percentile(waits, 99) * 1e3:>7.1f}ms"
            )


if __name__ == "__main__":
    main()
