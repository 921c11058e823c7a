"""The two apps the middleware benchmark compares, and the signed-in cookie it sends.

``build(variant, db)`` returns ``(app, cookie_header)``. ``auth``: whop_oauth's
middleware reads the signed session, the endpoint looks the user's token up in the
SQLite store and returns the user id. ``bare``: the same endpoint, no auth at all.
Under uvicorn the variant and the database come from ``BENCH_VARIANT`` / ``BENCH_DB``.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from whop_oauth import OAuthClient, Token, TokenManager, whop_metadata
from whop_oauth.starlette import SessionData, WhopAuth, current_user
from whop_oauth.stores import open_store

ORIGIN = "http://127.0.0.1:8000"
SESSION_KEY = "bench-session-key-" + "x" * 32
ENCRYPTION_KEY = "bXlfYmVuY2hfa2V5X2lzXzMyX2J5dGVzX2xvbmchISE="  # 32 bytes, bench only
USER = "user_bench"


async def _bare(request: Request) -> Response:
    return PlainTextResponse(USER)


def _auth_app(db: str) -> tuple[Starlette, str]:
    client = OAuthClient(client_id="app_bench", redirect_uri=f"{ORIGIN}/auth/callback",
                         provider=whop_metadata("https://bench.example"))
    store = open_store(f"sqlite:///{db}", encryption_keys=[ENCRYPTION_KEY])
    manager = TokenManager(client, store)
    whop = WhopAuth(client, manager, secret_keys=[SESSION_KEY])

    async def whoami(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return PlainTextResponse("signed out", status_code=401)
        await manager.get_token(user=user.id, tenant=user.tenant)
        return PlainTextResponse(user.id)

    session = SessionData.new(USER, "default", name="Bench User")

    async def seed() -> None:
        seeding = open_store(f"sqlite:///{db}", encryption_keys=[ENCRYPTION_KEY])
        token = Token(access_token="bench-access", expires_at=time.time() + 86400,
                      refresh_token="bench-refresh")
        seeder = TokenManager(client, seeding)
        await seeder.save(token, user=USER)
        # The server-side record the cookie points to, as a sign-in would make it.
        await seeder.sessions.create(session.session_id, seeder.key(user=USER), lifetime=86400)
        await seeding.aclose()

    # build() is sync and may be called inside a running loop: seed from a thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, seed()).result()
    cookies = whop._site.cookies
    cookie = f"{cookies.session_cookie}={cookies.codec.dumps_session(session)}"
    app = Starlette(routes=[*whop.routes, Route("/whoami", whoami)], middleware=[whop.middleware])
    return app, cookie


def build(variant: str, db: str) -> tuple[Starlette, str]:
    if variant == "bare":
        return Starlette(routes=[Route("/whoami", _bare)]), ""
    return _auth_app(db)


def _from_env() -> Starlette:
    app, _ = build(os.environ["BENCH_VARIANT"], os.environ["BENCH_DB"])
    return app


if "BENCH_VARIANT" in os.environ:
    app = _from_env()
