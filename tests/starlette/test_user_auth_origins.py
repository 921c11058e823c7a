"""Where a user's token may go, now that it is worked out once instead of per request.

``UserTokenAuth`` asks a ``TokenSource`` (any, not only ``TokenManager``) for the token
and the provider's origins; the manager parses those once per metadata document; allowed
origins are parsed at construction; every comparison is an exact (scheme, host, port)
tuple. ``user_http_client`` joins paths to the API base without re-checking them, so the
tests here pin where such paths, absolute URLs and redirect hops end up. And the
middleware sets ``request.user`` / ``request.auth`` itself, as Starlette's would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette_support import APP_ORIGIN, Env, make_env

from whop_oauth import (
    ConfigurationError,
    ProviderMetadata,
    Token,
    TokenKey,
    TokenManager,
    UserTokenAuth,
    whop_metadata,
)
from whop_oauth.starlette import WhopAuthBackend, user_http_client
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop

API = ("https", "api.example", 443)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeSource:
    """A ``TokenSource`` that is not a ``TokenManager``: tokens t1, t2, ... in turn."""

    def __init__(self, origins: set[tuple[str, str, int]]) -> None:
        self.origins = frozenset(origins)
        self.current = 1
        self.gets = 0
        self.rejected: list[str | None] = []

    async def get_token(self, *, user: str, tenant: str = "default") -> Token:
        self.gets += 1
        return Token(access_token=f"t{self.current}", expires_at=time.time() + 3600)

    async def refresh(
        self, *, user: str, tenant: str = "default", rejected_access_token: str | None = None
    ) -> Token:
        self.rejected.append(rejected_access_token)
        self.current += 1
        return Token(access_token=f"t{self.current}", expires_at=time.time() + 3600)

    def provider_origins(self) -> frozenset[tuple[str, str, int]]:
        return self.origins


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://api.example/v1/me", True),
        ("https://api.example:443/v1/me", True),  # the default port is the same origin
        ("https://API.Example/v1/me", True),  # host names are case-insensitive
        ("http://api.example/v1/me", False),  # another scheme
        ("https://api.example:8443/v1/me", False),  # another port
        ("https://v2.api.example/v1/me", False),  # a subdomain is another origin
        ("https://api.example.evil.test/v1/me", False),
        ("https://api.example@evil.test/v1/me", False),  # userinfo, not the host
        ("http://127.0.0.1:8080/upload", True),  # allowed_origins, exactly
        ("http://127.0.0.1/upload", False),
        ("https://127.0.0.1:8080/upload", False),
        ("/v1/me", False),  # relative: no origin at all
        ("ftp://api.example/v1/me", False),
        ("not a url", False),
    ],
)
def test_the_token_goes_only_to_exact_provider_and_allowed_origins(url: str, sent: bool) -> None:
    auth = UserTokenAuth(FakeSource({API}), user="u", allowed_origins=["http://127.0.0.1:8080"])
    assert auth.sends_token_to(url) is sent
    assert auth.sends_token_to(httpx.URL(url)) is sent  # what the auth flow checks


async def test_any_token_source_drives_the_auth_flow_send_refresh_retry() -> None:
    source = FakeSource({API})
    seen: list[tuple[str, str | None]] = []

    def api(request: httpx.Request) -> httpx.Response:
        bearer = request.headers.get("authorization")
        seen.append((str(request.url), bearer))
        return httpx.Response(200 if bearer == "Bearer t2" else 401)

    auth = UserTokenAuth(source, user="u")
    async with httpx.AsyncClient(transport=httpx.MockTransport(api), auth=auth) as client:
        assert (await client.get("https://api.example/v1/me")).status_code == 200
        assert (await client.get("https://elsewhere.example/x")).status_code == 401
    assert seen == [
        ("https://api.example/v1/me", "Bearer t1"),
        ("https://api.example/v1/me", "Bearer t2"),
        ("https://elsewhere.example/x", None),
    ]
    assert source.rejected == ["t1"]
    assert source.gets == 1  # the request to another origin did not even fetch the token


class DiscoveringClient:
    """A ``RefreshingClient`` whose metadata is missing until "discovered", then replaceable."""

    issuer, client_id, deadline = "https://id.example", "app_1", 5.0

    def __init__(self) -> None:
        self.document: ProviderMetadata | None = None

    @property
    def metadata(self) -> ProviderMetadata:
        if self.document is None:
            raise ConfigurationError("provider metadata not loaded")
        return self.document

    def token_key(self, user: str, tenant: str = "default") -> TokenKey:
        return TokenKey(tenant, user, self.issuer, self.client_id)

    async def refresh(self, token: Token, **options: Any) -> Token:
        raise AssertionError("no refresh here")

    async def revoke(self, token: Token) -> None:
        raise AssertionError("no revocation here")


def test_the_manager_parses_the_provider_origins_once_per_metadata_document() -> None:
    client = DiscoveringClient()
    manager = TokenManager(client, MemoryTokenStore())
    # Before discovery: the issuer alone, asked again next time.
    assert manager.provider_origins() == {("https", "id.example", 443)}
    assert not manager.auth(user="u").sends_token_to("https://api.id.example/v1/me")

    client.document = whop_metadata("https://id.example")
    first = manager.provider_origins()
    assert first == {("https", "id.example", 443)}  # Whop's API base lives on the issuer
    client.document = ProviderMetadata(
        issuer="https://id.example",
        authorization_endpoint="https://id.example/authorize",
        token_endpoint="https://id.example/token",
        userinfo_endpoint="https://userinfo.id.example/me",
        api_base_url="https://api.id.example:8443/v1",
    )
    second = manager.provider_origins()
    assert second == {
        ("https", "id.example", 443),
        ("https", "userinfo.id.example", 443),
        ("https", "api.id.example", 8443),
    }
    assert manager.provider_origins() is second  # parsed once, then a lookup
    auth = manager.auth(user="u")
    assert auth.sends_token_to("https://api.id.example:8443/v1/me")
    assert not auth.sends_token_to("https://api.id.example/v1/me")


# -- user_http_client: paths, absolute URLs and redirect hops --------------------------------


class Recorder(httpx.AsyncBaseTransport):
    """Every request the app sends to the provider, with its Authorization header."""

    def __init__(self, mock: MockWhop) -> None:
        self.inner = mock.transport()
        self.handlers: dict[str, Handler] = {}
        self.seen: list[tuple[str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        handler = self.handlers.get(str(request.url.copy_with(query=None)))
        if handler is not None:
            self.seen.append((str(request.url), request.headers.get("authorization")))
            return await handler(request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def recorded(mock: MockWhop) -> AsyncIterator[tuple[Env, Recorder, httpx.AsyncClient]]:
    recorder = Recorder(mock)
    http = httpx.AsyncClient(transport=recorder)
    env = make_env(mock, http)

    async def call(request: Request) -> Response:
        url = request.query_params["url"]
        follow = "follow" in request.query_params
        try:
            answer = await user_http_client(request).get(url, follow_redirects=follow)
        except ConfigurationError as error:
            return JSONResponse({"refused": str(error)}, status_code=400)
        return JSONResponse({"status": answer.status_code, "url": str(answer.url)})

    env.app.router.routes.append(Route("/call", call))
    browser = env.browser()
    await env.sign_in(browser)
    yield env, recorder, browser
    await browser.aclose()
    await env.aclose()
    await http.aclose()


async def _bearer(env: Env) -> str:
    return f"Bearer {await env.manager.access_token(user='user_mock1')}"


async def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={})


@pytest.mark.parametrize(
    ("path", "lands_at"),
    [
        ("/things", "https://mock-whop.test/api/v1/things"),
        ("things", "https://mock-whop.test/api/v1/things"),
        ("/things?first=1", "https://mock-whop.test/api/v1/things?first=1"),
        # Scheme-relative: still a path under the API base, never another host.
        ("//evil.example/things", "https://mock-whop.test/api/v1/evil.example/things"),
        ("/@evil.example/things", "https://mock-whop.test/api/v1/@evil.example/things"),
    ],
)
async def test_paths_are_joined_to_the_api_base_and_carry_the_token(
    recorded: tuple[Env, Recorder, httpx.AsyncClient], path: str, lands_at: str
) -> None:
    env, recorder, browser = recorded
    recorder.handlers[lands_at.split("?")[0]] = _ok
    answer = await browser.get("/call", params={"url": path})
    assert answer.json() == {"status": 200, "url": lands_at}
    assert recorder.seen == [(lands_at, await _bearer(env))]


async def test_absolute_urls_go_only_to_the_providers_origins(
    recorded: tuple[Env, Recorder, httpx.AsyncClient],
) -> None:
    env, recorder, browser = recorded
    recorder.handlers["https://mock-whop.test/oauth/other"] = _ok
    answer = await browser.get("/call", params={"url": "https://mock-whop.test/oauth/other"})
    assert answer.json() == {"status": 200, "url": "https://mock-whop.test/oauth/other"}
    for elsewhere in (
        "https://mock-whop.test:8443/api/v1/me",
        "http://mock-whop.test/api/v1/me",
        "https://api.mock-whop.test/api/v1/me",
        "https://evil.example/api/v1/me",
    ):
        answer = await browser.get("/call", params={"url": elsewhere})
        assert answer.status_code == 400
        assert "only sent to the provider" in answer.json()["refused"]
    assert recorder.seen == [("https://mock-whop.test/oauth/other", await _bearer(env))]


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/landing",
        "http://mock-whop.test/api/v1/landing",  # same host, downgraded to http
        "https://mock-whop.test:8443/api/v1/landing",  # same host, another port
    ],
)
async def test_a_redirect_hop_to_another_origin_arrives_without_the_token(
    recorded: tuple[Env, Recorder, httpx.AsyncClient], target: str
) -> None:
    env, recorder, browser = recorded

    async def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": target})

    recorder.handlers["https://mock-whop.test/api/v1/go"] = redirect
    recorder.handlers[target] = _ok
    answer = await browser.get("/call", params={"url": "/go", "follow": "1"})
    assert answer.json() == {"status": 200, "url": target}
    assert recorder.seen == [
        ("https://mock-whop.test/api/v1/go", await _bearer(env)),
        (target, None),
    ]


# -- request.user and request.auth without Starlette's AuthenticationMiddleware --------------


async def _who(request: Request) -> Response:
    return JSONResponse(
        {
            "user": type(request.user).__name__,
            "authenticated": request.user.is_authenticated,
            "scopes": list(request.auth.scopes),
        }
    )


@requires("email")
async def _needs_email(request: Request) -> Response:
    return JSONResponse({"email": request.user.email})


async def test_the_middleware_sets_user_and_auth_as_starlettes_would(env: Env) -> None:
    routes = [Route("/who", _who), Route("/email", _needs_email), *env.whop.routes]
    ours = Starlette(routes=routes, middleware=[env.whop.middleware])
    # An app that stacks Starlette's AuthenticationMiddleware with our backend inside
    # ours sees the very same values.
    stacked = Starlette(
        routes=routes,
        middleware=[
            env.whop.middleware,
            Middleware(AuthenticationMiddleware, backend=WhopAuthBackend()),
        ],
    )
    answers = []
    for app in (ours, stacked):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=APP_ORIGIN
        ) as browser:
            signed_out = (await browser.get("/who")).json()
            refused = (await browser.get("/email")).status_code
            await env.sign_in(browser)
            signed_in = (await browser.get("/who")).json()
            email = (await browser.get("/email")).json()
        answers.append((signed_out, refused, signed_in, email))
    assert answers[0] == answers[1]
    signed_out, refused, signed_in, email = answers[0]
    assert signed_out == {"user": "UnauthenticatedUser", "authenticated": False, "scopes": []}
    assert refused == 403
    assert signed_in["user"] == "WhopUser"
    assert signed_in["authenticated"] is True
    assert signed_in["scopes"][0] == "authenticated"
    assert "email" in signed_in["scopes"]
    assert email == {"email": "mock.user@example.com"}
