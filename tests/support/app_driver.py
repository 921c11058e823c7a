"""The one test driver: the real OAuthClient against a MockWhop and a sign-in through the
real code flow (``make_client``, ``sign_in``); a Starlette app around them, a browser, and
a sign-in through the app (``build_app``, ``App``)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from spies import SpyStore, Wire
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from whop_oauth import (
    OAuthClient,
    ProviderMetadata,
    Token,
    TokenKey,
    TokenManager,
    WhopOAuthError,
    whop_metadata,
)
from whop_oauth.starlette import WhopAuth, current_user, user_http_client
from whop_oauth.stores import MemoryTokenStore, SessionStore, TokenStore
from whop_oauth.testing import MockWhop

CLIENT_ID = "app_mock"
REDIRECT_URI = "http://127.0.0.1/callback"
USER = "user_mock1"


def make_client(
    issuer: str, http: httpx.AsyncClient, *, client_id: str = CLIENT_ID, **options: object
) -> OAuthClient:
    """The real OAuthClient, pointed at a MockWhop issuer."""
    return OAuthClient(
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        provider=whop_metadata(issuer),
        http_client=http,
        **options,  # type: ignore[arg-type]
    )


async def sign_in(client: OAuthClient, http: httpx.AsyncClient, **params: str) -> Token:
    """A grant obtained through the real code flow (the mock approves at once); ``params``
    go to the authorization request (``company_id=...``)."""
    flow = client.authorization_request(**params)  # type: ignore[arg-type]
    response = await http.get(flow.url, follow_redirects=False)
    assert response.status_code in (302, 303), response.text
    query = httpx.URL(response.headers["location"]).query.decode()
    return await client.complete_authorization(query, flow)


def expired(token: Token) -> Token:
    """The same grant, as if its access token had expired a second ago."""
    return dataclasses.replace(token, expires_at=time.time() - 1)


# -- an app: a Starlette site signed in against MockWhop, and a browser --------------------

APP_ORIGIN = "http://127.0.0.1:8000"
APP_REDIRECT_URI = f"{APP_ORIGIN}/auth/callback"
KEY_A = "a" * 40
KEY_B = "b" * 40


async def _home(request: Request) -> Response:
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


async def _me(request: Request) -> Response:
    """The provider's userinfo, fetched with the user's token."""
    metadata = await request.app.state.whop._site.client.load_metadata()
    response = await user_http_client(request).get(metadata.userinfo_endpoint)
    return JSONResponse(response.json(), status_code=response.status_code)


async def _account(request: Request) -> Response:
    """The provider's REST API (``{api_base_url}/me``), with the user's token."""
    response = await user_http_client(request).get("/me")
    return JSONResponse(response.json(), status_code=response.status_code)


@requires("email")
async def _email_only(request: Request) -> Response:
    return JSONResponse({"email": request.user.email})


@requires("billing:write")
async def _billing(request: Request) -> Response:
    return JSONResponse({"ok": True})


def site(whop: WhopAuth) -> Starlette:
    """The app's pages around ``whop``'s routes and middleware."""
    app = Starlette(
        routes=[
            *whop.routes,
            Route("/", _home),
            Route("/me", _me),
            Route("/account", _account),
            Route("/email", _email_only),
            Route("/billing", _billing),
        ],
        middleware=[whop.middleware],
    )
    app.state.whop = whop
    return app


@dataclass
class App:
    """The app under test, its provider, and everything a test inspects."""

    mock: MockWhop
    client: OAuthClient
    manager: TokenManager
    store: Any  # the store given, or a SpyStore around it (``spy=True``)
    whop: WhopAuth
    app: Starlette
    provider: httpx.AsyncClient  # the browser's connection to the provider
    wire: Wire | None = None  # every request the library made, unless ``http`` was given
    errors: list[WhopOAuthError] = field(default_factory=list)  # with ``record_errors``
    expect_sign_in: int | None = None  # the status ``sign_in`` asserts, if any

    def browser(self, origin: str = APP_ORIGIN) -> httpx.AsyncClient:
        """A browser: keeps cookies, follows no redirects, talks to the app."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=origin)

    async def authorize(self, login: httpx.Response) -> str:
        """Take the login redirect through the provider; the callback URL it sends back."""
        assert login.status_code == 303, login.text
        answer = await self.provider.get(login.headers["location"])
        assert answer.status_code in (302, 303), answer.text
        return str(answer.headers["location"])

    async def start(self, browser: httpx.AsyncClient, **params: str) -> tuple[str, dict[str, str]]:
        """Log in up to the callback: its URL, and the authorize URL's parameters."""
        login = await browser.get("/auth/login", params=params)
        query = dict(parse_qsl(urlsplit(login.headers["location"]).query))
        return await self.authorize(login), query

    async def sign_in(self, browser: httpx.AsyncClient, **params: str) -> httpx.Response:
        """The whole sign-in; the app's answer to the callback."""
        callback, _ = await self.start(browser, **params)
        response = await browser.get(callback)
        if self.expect_sign_in is not None:
            assert response.status_code == self.expect_sign_in, response.text
        return response

    def key(self, user: str = USER) -> TokenKey:
        return self.client.token_key(user)

    async def aclose(self) -> None:
        await self.provider.aclose()
        await self.client.aclose()
        await self.whop.aclose()


def build_app(
    mock: MockWhop,
    http: httpx.AsyncClient | None = None,
    *,
    client_id: str = CLIENT_ID,
    client_secret: str | None = None,
    redirect_uri: str = APP_REDIRECT_URI,
    provider: str | ProviderMetadata | None = None,
    store: TokenStore | None = None,
    spy: bool = False,
    secret_keys: Sequence[str] = (KEY_A,),
    client_options: Mapping[str, Any] | None = None,
    manager_options: Mapping[str, Any] | None = None,
    record_errors: bool = False,
    expect_sign_in: int | None = None,
    **whop_options: Any,
) -> App:
    """The app against ``mock``. Without ``http``, the library talks through a ``Wire``;
    ``spy`` records grant writes; ``record_errors`` keeps failed sign-ins in ``App.errors``
    (and answers them with a plain page); other options go to ``WhopAuth``."""
    wire = None
    if http is None:
        wire = Wire(mock.transport())
        http = httpx.AsyncClient(transport=wire)
    client = OAuthClient(
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        provider=provider or mock.metadata,
        http_client=http,
        **(client_options or {}),
    )
    real = store if store is not None else MemoryTokenStore()
    used: Any = SpyStore(real) if spy else real
    options = dict(manager_options or {})
    if spy:
        assert isinstance(real, SessionStore)  # the spy records grant writes only
        options.setdefault("session_store", real)
    manager = TokenManager(client, used, **options)
    errors: list[WhopOAuthError] = []

    def on_error(request: Request, error: WhopOAuthError, status: int) -> Response:
        errors.append(error)
        return PlainTextResponse(f"sign-in failed ({type(error).__name__})", status_code=status)

    if record_errors:
        whop_options.setdefault("error_handler", on_error)
    whop = WhopAuth(client, manager, secret_keys=secret_keys, http_client=http, **whop_options)
    browser_side = httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer)
    return App(
        mock, client, manager, used, whop, site(whop), browser_side, wire, errors, expect_sign_in
    )
