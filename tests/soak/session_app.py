"""The app of the session-worker test, for real processes.

Served by uvicorn (``session_app:app``), it answers ``GET /`` with who is signed in.
Run as a script, it is a job that starts, acts and exits:
``python session_app.py end <session id>`` signs that session out, as a sign-out
handled by another machine would. Both read ``WHOP_TEST_STORE`` (a store URL) and
``WHOP_TEST_ENCRYPTION_KEY``; ``WINDOW`` is how long a process trusts its memory of
a session (``cache_ttl``).
"""

from __future__ import annotations

import asyncio
import os
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from whop_oauth import OAuthClient, TokenManager, open_store, whop_metadata
from whop_oauth.starlette import WhopAuth, current_user

SIGNING_KEY = "session-worker-signing-key-" + "k" * 32
WINDOW = 1.0


def manager(store_url: str = "", encryption_key: str = "") -> TokenManager:
    """The app's manager; without arguments, on the store the environment names."""
    store = open_store(
        store_url or os.environ["WHOP_TEST_STORE"],
        encryption_keys=[encryption_key or os.environ["WHOP_TEST_ENCRYPTION_KEY"]],
    )
    client = OAuthClient(
        client_id="app_sessions",
        redirect_uri="http://127.0.0.1/auth/callback",
        provider=whop_metadata("https://whop.invalid"),  # never called: no sign-in here
    )
    return TokenManager(client, store, cache_ttl=WINDOW)


def build() -> Starlette:
    tokens = manager()
    assert isinstance(tokens.client, OAuthClient)
    whop = WhopAuth(tokens.client, tokens, secret_keys=[SIGNING_KEY])

    async def home(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return JSONResponse({"signed_in": False})
        return JSONResponse({"signed_in": True, "user": user.id, "tenant": user.tenant})

    return Starlette(routes=[Route("/", home), *whop.routes], middleware=[whop.middleware])


async def end(session_id: str) -> None:
    tokens = manager()
    try:
        print("ended" if await tokens.end_session(session_id) else "not found", flush=True)
    finally:
        await tokens.store.aclose()


if __name__ == "__main__":
    command, session_id = sys.argv[1:]
    assert command == "end", command
    asyncio.run(end(session_id))
elif "WHOP_TEST_STORE" in os.environ:
    app = build()
