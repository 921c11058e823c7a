"""Helpers for the Starlette tests: an app against an in-process MockWhop, a browser."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from whop_oauth import OAuthClient, TokenManager
from whop_oauth.starlette import WhopAuth, current_user, user_http_client
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop

APP_ORIGIN = "http://127.0.0.1:8000"
KEY_A = "a" * 40
KEY_B = "b" * 40


async def home(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return JSONResponse({"signed_in": False})
    return JSONResponse(
        {
            "signed_in": True,
            "id": user.id,
            "tenant": user.tenant,
            "name": user.name,
            "email": user.email,
            "scopes": list(request.auth.scopes),
            "request_user": request.user.display_name,
        }
    )


async def me(request: Request) -> Response:
    metadata = await request.app.state.whop._site.client.load_metadata()
    response = await user_http_client(request).get(metadata.userinfo_endpoint)
    return JSONResponse(response.json(), status_code=response.status_code)


async def account(request: Request) -> Response:
    response = await user_http_client(request).get("/accounts/me")
    return JSONResponse(response.json(), status_code=response.status_code)


@requires("email")
async def email_only(request: Request) -> Response:
    return JSONResponse({"email": request.user.email})


@requires("billing:write")
async def billing(request: Request) -> Response:
    return JSONResponse({"ok": True})


def build_app(whop: WhopAuth) -> Starlette:
    app = Starlette(
        routes=[
            *whop.routes,
            Route("/", home),
            Route("/me", me),
            Route("/account", account),
            Route("/email", email_only),
            Route("/billing", billing),
        ],
        middleware=[whop.middleware],
    )
    app.state.whop = whop
    return app


@dataclass
class Env:
    mock: MockWhop
    client: OAuthClient
    manager: TokenManager
    store: MemoryTokenStore
    whop: WhopAuth
    app: Starlette
    provider: httpx.AsyncClient  # the browser's view of the provider

    def browser(self, origin: str = APP_ORIGIN) -> httpx.AsyncClient:
        """A browser: keeps cookies, does not follow redirects, talks to the app."""
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url=origin)

    async def authorize(self, login: httpx.Response) -> str:
        """Follow the login redirect through the mock; returns the callback URL."""
        assert login.status_code == 303, login.text
        answer = await self.provider.get(login.headers["location"])
        assert answer.status_code in (302, 303), answer.text
        return answer.headers["location"]

    async def sign_in(self, browser: httpx.AsyncClient, **params: str) -> httpx.Response:
        callback = await self.authorize(await browser.get("/auth/login", params=params))
        return await browser.get(callback)


def make_env(
    mock: MockWhop,
    http: httpx.AsyncClient,
    *,
    redirect_uri: str = f"{APP_ORIGIN}/auth/callback",
    client_id: str = "app_mock",
    secret_keys: Sequence[str] = (KEY_A,),
    store: MemoryTokenStore | None = None,
    client_options: dict[str, Any] | None = None,
    provider: str | None = None,
    manager_options: dict[str, Any] | None = None,
    **options: Any,
) -> Env:
    client = OAuthClient(
        client_id=client_id,
        redirect_uri=redirect_uri,
        provider=provider or mock.metadata,
        http_client=http,
        # Retries and their backoff belong to the client's tests; here they only add time.
        **{"max_retries": 0, **(client_options or {})},
    )
    store = store if store is not None else MemoryTokenStore()
    manager = TokenManager(client, store, **(manager_options or {}))
    whop = WhopAuth(client, manager, secret_keys=secret_keys, http_client=http, **options)
    provider = httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer)
    return Env(mock, client, manager, store, whop, build_app(whop), provider)


def session_cookie_value(browser: httpx.AsyncClient, name: str = "whop_session") -> str:
    """The browser's session cookie value (fails the test if there is none)."""
    value = browser.cookies.get(name)
    assert value is not None, "no session cookie"
    return value


def replace_session_cookie(
    browser: httpx.AsyncClient, value: str, name: str = "whop_session"
) -> None:
    """Put ``value`` in the browser's jar in place of its session cookie, as a browser would."""
    host = browser.base_url.host
    browser.cookies.delete(name)
    browser.cookies.set(name, value, domain=host, path="/")
