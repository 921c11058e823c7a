"""The apps the middleware benchmarks compare, their users, and a raw ASGI driver.

Every variant serves ``GET /me`` by calling the provider's API
(``https://bench.example/api/v1/me``) through one ``httpx.MockTransport`` that
answers 200 to any bearer token and 401 without one:

- ``bare``: no whop_oauth at all; the endpoint sends a fixed ``Authorization`` header
  on an app-owned ``httpx.AsyncClient``.
- ``helper``: whop_oauth's middleware reads the signed session cookie and checks the
  server-side session; the endpoint calls ``user_http_client(request).get("/me")``.
- ``auth``: the same middleware; the endpoint calls the API on the app-owned client
  with ``auth=manager.auth(user=..., tenant=...)``.
- ``middleware`` (in ``Together`` only): the same middleware in front of ``bare``'s
  endpoint, so the middleware's share of the cost shows apart.
- ``parsed``: ``bare`` handing httpx an ``httpx.URL`` parsed once, as
  ``user_http_client`` does with a path: the floor to compare it with like for like.

All of them use one kind of API client: cookie-less, as the one whop_oauth makes for
``user_http_client``. The signed-in variants use a token that needs no refresh.
``seed`` stores users (a grant and a server-side session each) in a store;
``cookie`` signs a user's session cookie. Under uvicorn, ``BENCH_VARIANT`` (a variant,
or ``together`` for ``Together``) and ``BENCH_STORE`` (a store URL) pick the app.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from whop_oauth import OAuthClient, Token, TokenManager, whop_metadata
from whop_oauth._no_cookies import NoCookieJar
from whop_oauth.starlette import SessionData, WhopAuth, user_http_client
from whop_oauth.starlette._policy import CookiePolicy
from whop_oauth.stores import open_store

ORIGIN = "http://127.0.0.1:8000"
PROVIDER = whop_metadata("https://bench.example")
API_URL = "https://bench.example/api/v1/me"
PARSED_API_URL = httpx.URL(API_URL)
SESSION_KEY = "bench-session-key-" + "x" * 32
ENCRYPTION_KEY = "bXlfYmVuY2hfa2V5X2lzXzMyX2J5dGVzX2xvbmchISE="  # 32 bytes, bench only
FIXED_BEARER = "Bearer bench-access-0"
VARIANTS = ("bare", "helper", "auth")
LOGIN_AT = int(time.time())


def user_id(index: int) -> str:
    return f"user_bench{index}"


def session_of(index: int) -> SessionData:
    """User ``index``'s session: a fixed id, so that every process can sign its cookie."""
    return SessionData(f"bench-session-{index:07d}-padding", user_id(index), "default", LOGIN_AT)


def _provider(request: httpx.Request) -> httpx.Response:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return httpx.Response(401)
    return httpx.Response(200, text="ok")


MOCK = httpx.MockTransport(_provider)


def api_client() -> httpx.AsyncClient:
    # Cookie-less, like the client whop_oauth makes for user_http_client: every variant
    # pays the same for httpx, so the differences are the auth layers' own.
    return httpx.AsyncClient(transport=MOCK, cookies=NoCookieJar())


def _client() -> OAuthClient:
    return OAuthClient(
        client_id="app_bench", redirect_uri=f"{ORIGIN}/auth/callback", provider=PROVIDER
    )


def _whop(manager: TokenManager, **options: Any) -> WhopAuth:
    assert isinstance(manager.client, OAuthClient)
    return WhopAuth(manager.client, manager, secret_keys=[SESSION_KEY], **options)


@cache
def _cookie_policy() -> CookiePolicy:
    return _whop(TokenManager(_client(), open_store("memory://")))._site.cookies


def cookie(index: int) -> str:
    """The ``Cookie`` header of user ``index``'s session."""
    policy = _cookie_policy()
    return f"{policy.session_cookie}={policy.codec.dumps_session(session_of(index))}"


async def seed(manager: TokenManager, users: Iterable[int], *, concurrency: int = 1) -> None:
    """Store a grant and a live server-side session for each user index."""
    expires = time.time() + 86400

    async def one(index: int) -> None:
        token = Token(
            access_token=f"bench-access-{index}",
            expires_at=expires,
            refresh_token=f"bench-refresh-{index}",
        )
        key = manager.key(user=user_id(index))
        await manager.store.put(key, token)
        await manager.sessions.create(session_of(index).session_id, key, lifetime=86400)

    pending: set[asyncio.Task[None]] = set()
    for index in users:
        pending.add(asyncio.create_task(one(index)))
        if len(pending) >= concurrency:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.gather(*pending)


def manager_for(store_url: str) -> TokenManager:
    return TokenManager(_client(), open_store(store_url, encryption_keys=[ENCRYPTION_KEY]))


def build(
    variant: str, manager: TokenManager | None = None, api: httpx.AsyncClient | None = None
) -> Starlette:
    """The app of ``variant``; the signed-in ones need ``manager``.

    ``api`` is the client every endpoint calls the API through (``user_http_client``'s
    too); variants compared in one process share one, so no variant gets a client
    object of its own that happens to sit better in memory.
    """
    api = api or api_client()

    async def bare(request: Request) -> Response:
        answer = await api.get(API_URL, headers={"Authorization": FIXED_BEARER})
        return PlainTextResponse(answer.text, status_code=answer.status_code)

    async def parsed(request: Request) -> Response:
        answer = await api.get(PARSED_API_URL, headers={"Authorization": FIXED_BEARER})
        return PlainTextResponse(answer.text, status_code=answer.status_code)

    if variant in ("bare", "parsed"):
        return Starlette(routes=[Route("/me", bare if variant == "bare" else parsed)])
    assert manager is not None
    whop = _whop(manager, http_client=api)

    async def helper(request: Request) -> Response:
        answer = await user_http_client(request).get("/me")
        return PlainTextResponse(answer.text, status_code=answer.status_code)

    async def auth(request: Request) -> Response:
        user = request.user
        if not user.is_authenticated:
            return PlainTextResponse("signed out", status_code=401)
        answer = await api.get(API_URL, auth=manager.auth(user=user.id, tenant=user.tenant))
        return PlainTextResponse(answer.text, status_code=answer.status_code)

    endpoint = {"helper": helper, "auth": auth, "middleware": bare}[variant]
    # /me first, as in the bare app: Starlette's route matching costs the same in both.
    return Starlette(routes=[Route("/me", endpoint), *whop.routes], middleware=[whop.middleware])


class Driver:
    """Calls an ASGI app directly (no HTTP parsing, no transport): only the app's cost shows."""

    def __init__(self, app: Starlette, path: str = "/me") -> None:
        self.app = app
        self._scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

    async def get(self, cookie: str | None = None) -> int:
        """One GET; returns the status (the body is read and dropped)."""
        headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app({**self._scope, "headers": headers}, receive, send)
        return status


@asynccontextmanager
async def seeded_manager(store_url: str, users: Iterable[int]) -> AsyncIterator[TokenManager]:
    manager = manager_for(store_url)
    try:
        await seed(manager, users)
        yield manager
    finally:
        await manager.store.aclose()


#: The apps ``Together`` serves: the three variants, the bare app built a second time
#: (a control), and the middleware in front of the bare endpoint (the middleware's
#: share of the signed-in variants' cost).
TOGETHER = ("bare", "again", "helper", "auth", "middleware")


class Together:
    """Every app of ``names`` (``TOGETHER``) in one server, each under its own first path
    segment.

    ``/bare/me``, ``/again/me``, ``/helper/me``, ``/auth/me``, ``/middleware/me``. Each
    call of an app is timed in CPU time (``thread_time_ns``, the unit of the server's own
    CPU time the benchmark reads). A call does not wait (the API is an
    ``httpx.MockTransport``, a GET has no body, a response is written without waiting),
    so its time is that request's own, however requests interleave; ``overlaps`` counts
    calls that began while another was running, which a call that waited would cause.
    ``GET /times`` answers ``{"times": ns per app, "overlaps": n}`` so far and starts over.
    """

    def __init__(self, manager: TokenManager, names: Iterable[str] = TOGETHER) -> None:
        api = api_client()  # as in-process: one API client for every variant
        self.apps = {
            name: build("bare", api=api) if name == "again" else build(name, manager, api)
            for name in names
        }
        self.times: dict[str, list[int]] = {name: [] for name in self.apps}
        #: Calls that began while another was still running: a call that waited. The
        #: benchmark refuses a run with any, since their times overlap.
        self.overlaps = 0
        self.running = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: nothing to start
            return
        prefix, _, rest = scope["path"][1:].partition("/")
        app = self.apps.get(prefix)
        if app is None:
            if prefix != "times":
                await PlainTextResponse("no such app", 404)(scope, receive, send)
                return
            answer = {"times": self.times, "overlaps": self.overlaps}
            self.times, self.overlaps = {name: [] for name in self.apps}, 0
            await Response(json.dumps(answer), media_type="application/json")(scope, receive, send)
            return
        own = {**scope, "path": "/" + rest, "raw_path": b"/" + rest.encode()}
        if self.running:
            self.overlaps += 1  # a call that waited: its time holds another request's
        self.running += 1
        start = time.thread_time_ns()
        await app(own, receive, send)
        del own  # what the request left in its scope is freed inside its own time
        self.times[prefix].append(time.thread_time_ns() - start)
        self.running -= 1


def _from_env() -> Any:
    variant = os.environ["BENCH_VARIANT"]
    if variant == "bare":
        return build(variant)
    if variant.startswith("together"):  # "together", or "together:bare,helper"
        _, _, names = variant.partition(":")
        chosen = names.split(",") if names else TOGETHER
        return Together(manager_for(os.environ["BENCH_STORE"]), chosen)
    return build(variant, manager_for(os.environ["BENCH_STORE"]))


if "BENCH_VARIANT" in os.environ:
    app = _from_env()
