"""Helpers for the security suite: a Starlette app signed in against MockWhop, a wire
that counts (and can break) every request the library makes, and a store that records
every write."""

from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from whop_oauth import OAuthClient, Token, TokenKey, TokenManager, WhopOAuthError
from whop_oauth.starlette import WhopAuth, current_user, user_http_client
from whop_oauth.stores import Lease, MemoryTokenStore, SessionStore, StoredToken, TokenStore
from whop_oauth.testing import MockClient, MockWhop

APP_ORIGIN = "http://127.0.0.1:8000"
REDIRECT_URI = f"{APP_ORIGIN}/auth/callback"
CLIENT_ID = "app_security"
USER = "user_mock1"
# Random per run, so a test that finds one in a log found a real leak, not a coincidence.
CLIENT_SECRET = "apik_" + secrets.token_urlsafe(24)
SESSION_KEY = secrets.token_urlsafe(40)

#: What the wire can do to one request instead of delivering it normally.
Break = Literal["reset before", "reset after", "truncated", "504 after"]


class _TruncatedBody(httpx.AsyncByteStream):
    """Half of a body, then the connection drops (what httpx raises for a short read)."""

    def __init__(self, part: bytes) -> None:
        self._part = part

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._part
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )


class Wire(httpx.AsyncBaseTransport):
    """Sits between the library and the provider: counts requests by path, keeps their
    bodies, and breaks the ones it was told to."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.hits: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []  # every response body the provider sent
        self._plan: dict[str, deque[Break]] = {}

    def break_next(self, path: str, how: Break, times: int = 1) -> None:
        self._plan.setdefault(path, deque()).extend([how] * times)

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits[path] += 1
        await request.aread()
        self.requests.append(request)
        plan = self._plan.get(path)
        how = plan.popleft() if plan else None
        if how == "reset before":
            raise httpx.ReadError("[Errno 104] Connection reset by peer")
        response = await self.inner.handle_async_request(request)
        # The raw bytes: the client decodes any Content-Encoding itself, as on a real wire.
        body = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        self.bodies.append(body)
        if how == "reset after":  # the provider did the work; its answer is lost
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if how == "504 after":  # a gateway gave up waiting, after the provider did the work
            return httpx.Response(504, content=b"<html>Gateway Time-out</html>", request=request)
        if how == "truncated":
            headers = [(k, v) for k, v in response.headers.multi_items()]
            stream = _TruncatedBody(body[: len(body) // 2])
            return httpx.Response(response.status_code, headers=headers, stream=stream)
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class SpyStore:
    """A ``TokenStore`` that records every write it passes on."""

    def __init__(self, inner: TokenStore | None = None) -> None:
        self.inner = inner if inner is not None else MemoryTokenStore()
        self.writes: list[tuple[str, TokenKey]] = []

    def __repr__(self) -> str:
        return f"<SpyStore {self.inner!r}>"

    async def get(self, key: TokenKey) -> StoredToken | None:
        return await self.inner.get(key)

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken:
        self.writes.append(("put", key))
        return await self.inner.put(key, token, expected_version=expected_version, fence=fence)

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool:
        self.writes.append(("delete", key))
        return await self.inner.delete(key, expected_version=expected_version)

    def lock(
        self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0
    ) -> AbstractAsyncContextManager[Lease]:
        return self.inner.lock(key, lease=lease, timeout=timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()


def new_mock(**options: object) -> MockWhop:
    """A MockWhop that knows our confidential client."""
    client = MockClient(CLIENT_ID, client_secret=CLIENT_SECRET, name="Security suite")
    return MockWhop(clients={CLIENT_ID: client}, **options)  # type: ignore[arg-type]


async def _home(request: Request) -> Response:
    user = current_user(request)
    return JSONResponse({"signed_in": user is not None, "id": user.id if user else None})


async def _me(request: Request) -> Response:
    response = await user_http_client(request).get("/me")
    return JSONResponse(response.json(), status_code=response.status_code)


@dataclass
class App:
    """The app under test, its provider, and everything a test inspects."""

    mock: MockWhop
    wire: Wire
    client: OAuthClient
    store: SpyStore
    manager: TokenManager
    whop: WhopAuth
    app: Starlette
    provider: httpx.AsyncClient  # the browser's connection to the provider
    errors: list[WhopOAuthError] = field(default_factory=list)

    def browser(self) -> httpx.AsyncClient:
        """A browser: keeps cookies, follows no redirects."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=APP_ORIGIN)

    async def authorize(self, login: httpx.Response) -> str:
        """Take the login redirect through the provider; the callback URL it sends back."""
        assert login.status_code == 303, login.text
        answer = await self.provider.get(login.headers["location"])
        assert answer.status_code in (302, 303), answer.text
        return str(answer.headers["location"])

    async def start(self, browser: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
        """Log in up to the callback: its URL, and the authorize URL's parameters."""
        login = await browser.get("/auth/login")
        params = dict(parse_qsl(urlsplit(login.headers["location"]).query))
        return await self.authorize(login), params

    async def sign_in(self, browser: httpx.AsyncClient) -> httpx.Response:
        callback, _ = await self.start(browser)
        response = await browser.get(callback)
        assert response.status_code == 303, response.text
        return response

    def key(self, user: str = USER) -> TokenKey:
        return self.client.token_key(user)

    async def aclose(self) -> None:
        await self.provider.aclose()
        await self.client.aclose()
        await self.whop.aclose()


def build_app(
    mock: MockWhop,
    *,
    store: TokenStore | None = None,
    secret_keys: Sequence[str] = (SESSION_KEY,),
    default_pages: bool = False,
    **client_options: object,
) -> App:
    """The app; failed sign-ins are recorded in ``App.errors`` unless ``default_pages``."""
    wire = Wire(mock.transport())
    http = httpx.AsyncClient(transport=wire)
    client = OAuthClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        provider=mock.metadata,
        http_client=http,
        **client_options,  # type: ignore[arg-type]
    )
    spy = SpyStore(store)
    assert isinstance(spy.inner, SessionStore)  # the spy records grant writes only
    manager = TokenManager(client, spy, session_store=spy.inner)
    errors: list[WhopOAuthError] = []

    def on_error(request: Request, error: WhopOAuthError, status: int) -> Response:
        errors.append(error)
        return PlainTextResponse(f"sign-in failed ({type(error).__name__})", status_code=status)

    whop = WhopAuth(
        client,
        manager,
        secret_keys=secret_keys,
        error_handler=None if default_pages else on_error,
        http_client=http,
    )
    app = Starlette(
        routes=[*whop.routes, Route("/", _home), Route("/me", _me)],
        middleware=[whop.middleware],
    )
    provider = httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer)
    built = App(mock, wire, client, spy, manager, whop, app, provider)
    built.errors = errors
    return built


def edit_query(
    url: str,
    *,
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
    replace: dict[str, str] | None = None,
) -> str:
    """``url`` with query parameters dropped, replaced or added (duplicates kept)."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop]
    if replace:
        pairs = [(k, replace.get(k, v)) for k, v in pairs]
    pairs += list(add)
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def flow_cookie(browser: httpx.AsyncClient) -> tuple[str, str]:
    """The one flow cookie in the browser's jar: (name, value)."""
    found = [(c.name, c.value) for c in browser.cookies.jar if c.name.startswith("whop_flow_")]
    assert len(found) == 1, found
    name, value = found[0]
    assert value is not None
    return name, value


def set_flow_cookie(browser: httpx.AsyncClient, name: str, value: str) -> None:
    """Replace a flow cookie in the jar, as a browser (or an attacker) would."""
    browser.cookies.delete(name)
    browser.cookies.set(name, value, domain="127.0.0.1", path="/auth/callback")


def mint_token(mock: MockWhop, user: str = USER, **claims: object) -> Token:
    """A real grant from the mock, without the browser round trip."""
    body = mock.issue_tokens(user, client_id=CLIENT_ID, **claims)  # type: ignore[arg-type]
    return Token(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=time.time() + body["expires_in"],
        scopes=tuple(body["scope"].split()),
    )
