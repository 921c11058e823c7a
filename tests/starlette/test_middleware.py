"""The middleware's own contract: what passes through it untouched, what it answers
itself, what it logs, and which sessions it refuses (the server-side check)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket
from starlette_support import Env, replace_session_cookie, session_cookie_value

from whop_oauth import SignInRequired, TokenStoreError

LOGGER = "whop_oauth.starlette"


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def websocket_scope(cookie: bytes) -> dict[str, Any]:
    return {
        "type": "websocket", "asgi": {"version": "3.0"}, "path": "/ws", "raw_path": b"/ws",
        "root_path": "", "scheme": "ws", "query_string": b"", "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookie)], "subprotocols": [],
    }  # fmt: skip


async def websocket_call(app: Starlette, cookie: bytes) -> list[Message]:
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(websocket_scope(cookie), receive, send)
    return sent


async def test_lifespan_events_pass_through_untouched(env: Env) -> None:
    started: list[bool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append(True)
        yield

    app = Starlette(routes=env.whop.routes, middleware=[env.whop.middleware], lifespan=lifespan)
    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    assert started == [True]
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


@pytest.mark.parametrize("field", ["user", "tenant"])
async def test_a_cookie_naming_someone_else_than_its_session_record_is_signed_out(
    env: Env, browser: httpx.AsyncClient, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A cookie signed with a leaked key, say: its session id is live, but the record
    # says whose it is, and the cookie names another user or another tenant.
    await env.sign_in(browser)
    codec = env.whop._site.cookies.codec
    session, _ = codec.loads_session(session_cookie_value(browser), max_age=60)
    assert session is not None
    forged = dataclasses.replace(session, **{field: f"{getattr(session, field)}_other"})
    replace_session_cookie(browser, codec.dumps_session(forged))
    caplog.set_level(logging.INFO)

    home = await browser.get("/")

    assert home.json()["signed_in"] is False
    assert "Max-Age=0" in home.headers["set-cookie"]
    assert messages(caplog, logging.WARNING) == [
        "a session cookie names another user than its record: signed out"
    ]


async def test_an_ended_session_is_logged_as_such(
    env: Env, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await env.sign_in(browser)
    stolen = session_cookie_value(browser)
    await env.manager.end_session(
        env.whop._site.cookies.codec.loads_session(stolen, max_age=60)[0].session_id  # type: ignore[union-attr]
    )
    caplog.set_level(logging.INFO)

    assert (await browser.get("/")).json()["signed_in"] is False
    assert messages(caplog, logging.INFO) == [
        "the session was ended (signed out or signed in again): signed out"
    ]


async def unreachable(*args: object) -> None:
    raise TokenStoreError("Redis token store: ConnectionError")


async def signed_in_websocket_call(
    env: Env, browser: httpx.AsyncClient, endpoint: Callable[[WebSocket], Awaitable[None]]
) -> list[Message]:
    """``endpoint`` behind the middleware, called over a websocket as the signed-in browser."""
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], middleware=[env.whop.middleware])
    return await websocket_call(app, f"whop_session={session_cookie_value(browser)}".encode())


async def test_a_store_outage_on_a_websocket_is_raised_not_answered_with_a_page(
    env: Env, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()

    await env.sign_in(browser)
    env.manager.sessions._memory.clear()
    monkeypatch.setattr(env.store, "get_session", unreachable)

    with pytest.raises(TokenStoreError):
        await signed_in_websocket_call(env, browser, hello)


async def test_sign_in_required_on_a_websocket_is_raised_not_answered_with_a_page(
    env: Env, browser: httpx.AsyncClient
) -> None:
    async def needs_grant(websocket: WebSocket) -> None:
        raise SignInRequired("nobody is signed in")

    await env.sign_in(browser)

    with pytest.raises(SignInRequired):
        await signed_in_websocket_call(env, browser, needs_grant)


async def test_sign_in_required_after_the_response_started_is_raised_not_answered_twice(
    env: Env, browser: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk"
        raise SignInRequired("the grant went away mid-stream")

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks())

    await env.sign_in(browser)
    app = Starlette(routes=[Route("/stream", stream)], middleware=[env.whop.middleware])
    sent: list[Message] = []
    requests: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    cookie = f"whop_session={session_cookie_value(browser)}".encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/stream", "raw_path": b"/stream", "query_string": b"",
        "root_path": "", "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookie)],
    }  # fmt: skip

    with pytest.raises(SignInRequired):
        await app(scope, receive, send)
    assert [m["type"] for m in sent].count("http.response.start") == 1


async def test_a_grant_gone_mid_request_is_logged_and_an_unreachable_store_does_not_hide_it(
    env: Env,
    browser: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await env.sign_in(browser)
    await env.manager.sign_out(user="user_mock1")  # the grant is gone; the session is not

    monkeypatch.setattr(env.store, "delete_session", unreachable)
    caplog.set_level(logging.INFO)
    response = await browser.get("/me")

    assert response.status_code == 401
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert "sign-in required (NoGrantError): clearing the session" in messages(
        caplog, logging.INFO
    )
    assert messages(caplog, logging.WARNING) == ["could not end the session: TokenStoreError"]


async def test_a_response_that_sets_the_session_cookie_varies_on_cookie(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.sign_in(browser)

    assert "whop_session=" in callback.headers["set-cookie"]
    assert "cookie" in {v.strip().lower() for v in callback.headers["vary"].split(",")}


