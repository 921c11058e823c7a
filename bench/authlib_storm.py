"""Refresh storm, whop_oauth vs authlib's Starlette registry: one user, one expired token.

    python -m bench.authlib_storm [--callers 1000] [--rounds 3]

(a) ``TokenManager.get_token`` from N callers at once; (b) N concurrent
``oauth.whop.get("accounts/me", request=...)`` through ``authlib.integrations.starlette_client``,
whose registry builds a new client, with its own refresh lock, per request (authlib
issue #673). Both talk in-process to a fresh MockWhop per round, which rotates refresh
tokens and treats a replayed one as theft (``invalid_grant``, grant revoked).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning

from bench._harness import machine_line
from whop_oauth import OAuthClient, Token, TokenManager
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockStats, MockWhop

USER = "user_mock1"
Storm = Callable[[MockWhop, Token, int], Awaitable["Outcome"]]
COUNTED = ("token_requests", "token_refresh", "refresh_reuse_detected")


@dataclass
class Outcome:
    """One storm: token-endpoint requests, successful rotations, replays caught (each
    revokes the grant), caller errors, and whether one more refresh + API call worked."""

    posts: int
    rotated: int
    reuse: int
    errors: Counter[str]
    works: bool


def outcome(before: MockStats, after: MockStats, errors: Counter[str], works: bool) -> Outcome:
    posts, rotated, reuse = (getattr(after, n) - getattr(before, n) for n in COUNTED)
    return Outcome(posts, rotated, reuse, errors, works)


def whop_client(mock: MockWhop, http: httpx.AsyncClient) -> OAuthClient:
    return OAuthClient(client_id="app_mock", redirect_uri="http://127.0.0.1/callback",
                       provider=mock.metadata, http_client=http, max_retries=0)  # fmt: skip


async def storm(variant: Storm, callers: int) -> Outcome:
    """A fresh MockWhop, a real grant from its code flow (access token then expired), a storm."""
    mock = MockWhop()
    async with httpx.AsyncClient(transport=mock.transport()) as http:
        client = whop_client(mock, http)
        flow = client.authorization_request()
        location = (await http.get(flow.url)).headers["location"]
        token = await client.complete_authorization(httpx.URL(location).query.decode(), flow)
    mock.expire_access_tokens()
    return await variant(mock, replace(token, expires_at=time.time() - 10), callers)


async def call_all(callers: int, call: Callable[[], Awaitable[object]]) -> Counter[str]:
    """Run ``call`` from every caller at once; count failures by exception type."""
    errors: Counter[str] = Counter()

    async def one() -> None:
        try:
            await call()
        except Exception as error:
            errors[type(error).__name__] += 1

    await asyncio.gather(*(one() for _ in range(callers)))
    return errors


async def whop_storm(mock: MockWhop, token: Token, callers: int) -> Outcome:
    async with httpx.AsyncClient(transport=mock.transport()) as http:
        manager = TokenManager(whop_client(mock, http), MemoryTokenStore())
        await manager.save(token, user=USER)
        before = mock.stats
        errors = await call_all(callers, lambda: manager.get_token(user=USER))
        after = mock.stats
        try:  # one more refresh, then an API call with its access token
            fresh = await manager.refresh(user=USER)
            headers = {"Authorization": f"Bearer {fresh.access_token}"}
            reply = await http.get(f"{mock.issuer}/api/v1/accounts/me", headers=headers)
            works = reply.status_code == 200
        except Exception:
            works = False
    return outcome(before, after, errors, works)


def authlib_registry(mock: MockWhop, db: dict[str, dict[str, Any]]) -> Any:
    """``oauth.register("whop", ...)`` as a Starlette app would, with a dict as its token table."""
    with warnings.catch_warnings():  # authlib 1.9 warns it falls back from httpx2 to httpx
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.integrations.starlette_client import OAuth

    async def fetch_token(request: object) -> dict[str, Any]:
        return dict(db[USER])  # the app's row for the signed-in user of ``request``

    async def update_token(
        token: dict[str, Any], refresh_token: str | None = None, access_token: str | None = None
    ) -> None:
        if refresh_token and db[USER].get("refresh_token") == refresh_token:
            db[USER] = dict(token)  # authlib's documented pattern: match the old refresh token

    oauth = OAuth()
    oauth.register(
        "whop",
        client_id="app_mock",
        authorize_url=mock.metadata.authorization_endpoint,
        access_token_url=mock.metadata.token_endpoint,
        api_base_url=f"{mock.issuer}/api/v1/",
        client_kwargs={"token_endpoint_auth_method": "none", "transport": mock.transport()},
        fetch_token=fetch_token,
        update_token=update_token,
    )
    return oauth


async def authlib_storm(mock: MockWhop, token: Token, callers: int) -> Outcome:
    db = {USER: {"access_token": token.access_token, "refresh_token": token.refresh_token,
                 "token_type": "Bearer", "expires_at": token.expires_at}}  # fmt: skip
    oauth = authlib_registry(mock, db)

    async def call() -> None:
        reply = await oauth.whop.get("accounts/me", request=object())
        reply.raise_for_status()  # the API refusing the token fails the caller too

    before = mock.stats
    errors = await call_all(callers, call)
    after = mock.stats
    db[USER]["expires_at"] = time.time() - 10  # force one more refresh + API call
    works = not await call_all(1, call)
    return outcome(before, after, errors, works)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=1000, help="concurrent callers per storm")
    parser.add_argument("--rounds", type=int, default=3, help="storms per variant")
    args = parser.parse_args()
    print(f"Refresh storm vs authlib: {args.callers} callers on one expired token, "
          f"{args.rounds} rounds — {machine_line()}")  # fmt: skip
    print(f"  {'variant':<29} {'callers':>7} {'refresh POSTs':>13} {'rotated':>7} {'reuse':>6} "
          f"{'grant ok':>8}  caller errors (all rounds)")  # fmt: skip
    for name, variant in [("(a) whop_oauth TokenManager", whop_storm),
                          ("(b) authlib starlette OAuth", authlib_storm)]:  # fmt: skip
        outcomes = [asyncio.run(storm(variant, args.callers)) for _ in range(args.rounds)]
        errors = sum((o.errors for o in outcomes), Counter[str]())
        shown = ", ".join(f"{kind} x{count}" for kind, count in errors.most_common()) or "none"
        print(
            f"  {name:<29} {args.callers:>7} "
            f"{statistics.median(o.posts for o in outcomes):>13g} "
            f"{statistics.median(o.rotated for o in outcomes):>7g} "
            f"{statistics.median(o.reuse for o in outcomes):>6g} "
            f"{sum(o.works for o in outcomes):>4}/{len(outcomes):<3}  {shown}"
        )
    print("  refresh POSTs, rotated, reuse: medians per storm (MockWhop.stats); grant ok: "
          "storms after which one more refresh + API call still worked")  # fmt: skip


if __name__ == "__main__":
    main()
