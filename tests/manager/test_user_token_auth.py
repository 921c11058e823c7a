"""UserTokenAuth: the user's bearer on the provider's origins only, one refresh and retry on 401."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from app_driver import USER, sign_in

from whop_oauth import ConfigurationError, OAuthClient, TokenManager, UserTokenAuth, whop_metadata
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Routes(httpx.AsyncBaseTransport):
    """Records every request sent; serves some URLs itself, the rest from the mock."""

    def __init__(self, mock: MockWhop) -> None:
        self.asgi = mock.transport()
        self.handlers: dict[str, Handler] = {}
        self.seen: list[tuple[str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((str(request.url), request.headers.get("Authorization")))
        handler = self.handlers.get(f"{request.url.scheme}://{request.url.host}{request.url.path}")
        if handler is not None:
            return await handler(request)
        return await self.asgi.handle_async_request(request)


@pytest.fixture
def routes(mock: MockWhop) -> Routes:
    return Routes(mock)


@pytest.fixture
async def manager(client: OAuthClient, mock_http: httpx.AsyncClient) -> TokenManager:
    manager = TokenManager(client, MemoryTokenStore())
    await manager.save(await sign_in(client, mock_http), user=USER)
    return manager


@pytest.fixture
async def api(manager: TokenManager, routes: Routes) -> AsyncIterator[httpx.AsyncClient]:
    auth = manager.auth(user=USER, allowed_origins=["https://files.example"])
    async with httpx.AsyncClient(transport=routes, auth=auth) as client:
        yield client


ME = "https://mock-whop.test/api/v1/me"


async def unauthorized(request: httpx.Request) -> httpx.Response:
    # Consume the body as a network transport does (``aread`` would cache it on the request).
    async for _ in request.stream:  # type: ignore[union-attr]
        pass
    return httpx.Response(401, json={"error": "invalid_token"})


async def test_the_users_access_token_is_sent_as_a_bearer_header(
    api: httpx.AsyncClient, manager: TokenManager, routes: Routes
) -> None:
    response = await api.get(ME)
    assert response.status_code == 200
    token = await manager.access_token(user=USER)
    assert routes.seen == [(ME, f"Bearer {token}")]


async def test_a_401_brings_one_refresh_and_one_retry_with_the_new_token(
    api: httpx.AsyncClient, manager: TokenManager, routes: Routes, mock: MockWhop
) -> None:
    old = await manager.access_token(user=USER)
    mock.expire_access_tokens()  # the provider says no; our clock still says yes
    response = await api.get(ME)
    new = await manager.access_token(user=USER)
    assert response.status_code == 200
    assert new != old
    assert routes.seen == [(ME, f"Bearer {old}"), (ME, f"Bearer {new}")]
    assert mock.stats.token_refresh == 1


async def test_a_second_401_is_returned_without_another_refresh_or_retry(
    api: httpx.AsyncClient, routes: Routes, mock: MockWhop
) -> None:
    routes.handlers[ME] = unauthorized
    response = await api.get(ME)
    assert response.status_code == 401
    assert len(routes.seen) == 2
    assert mock.stats.token_refresh == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example/steal",
        "http://mock-whop.test/api/v1/me",  # same host, other scheme
        "https://mock-whop.test:8443/api/v1/me",  # same host, other port
        "https://api.mock-whop.test/api/v1/me",  # a subdomain is another origin
    ],
)
async def test_no_token_is_sent_to_another_origin(
    url: str, api: httpx.AsyncClient, routes: Routes
) -> None:
    routes.handlers[url.split("?")[0].replace(":8443", "")] = unauthorized
    response = await api.get(url)
    assert response.status_code == 401
    assert routes.seen == [(url, None)]


async def test_an_allowed_extra_origin_gets_the_token(
    api: httpx.AsyncClient, manager: TokenManager, routes: Routes
) -> None:
    async def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    routes.handlers["https://files.example/upload"] = ok
    await api.get("https://files.example/upload")
    assert routes.seen == [
        ("https://files.example/upload", f"Bearer {await manager.access_token(user=USER)}")
    ]


async def test_a_redirect_to_another_origin_arrives_without_the_token(
    api: httpx.AsyncClient, routes: Routes, manager: TokenManager
) -> None:
    async def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/landing"})

    async def landing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="landed")

    routes.handlers["https://mock-whop.test/api/v1/go"] = redirect
    routes.handlers["https://elsewhere.example/landing"] = landing
    response = await api.get("https://mock-whop.test/api/v1/go", follow_redirects=True)
    assert response.text == "landed"
    bearer = f"Bearer {await manager.access_token(user=USER)}"
    assert routes.seen == [
        ("https://mock-whop.test/api/v1/go", bearer),  # the provider's origin: the token goes
        ("https://elsewhere.example/landing", None),
    ]


async def test_a_streamed_upload_is_not_read_by_the_auth_flow(
    api: httpx.AsyncClient, routes: Routes
) -> None:
    started = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal started
        started = True
        for _ in range(3):
            yield b"chunk;"

    async def upload(request: httpx.Request) -> httpx.Response:
        assert not started  # the body is still unread when the request goes out
        return httpx.Response(200, content=await request.aread())

    routes.handlers["https://mock-whop.test/api/v1/files"] = upload
    response = await api.post("https://mock-whop.test/api/v1/files", content=body())
    assert response.content == b"chunk;chunk;chunk;"
    assert UserTokenAuth.requires_request_body is False


async def test_a_streamed_upload_answered_401_refreshes_but_is_not_sent_twice(
    api: httpx.AsyncClient, routes: Routes, mock: MockWhop
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    routes.handlers["https://mock-whop.test/api/v1/files"] = unauthorized
    response = await api.post("https://mock-whop.test/api/v1/files", content=body())
    assert response.status_code == 401
    assert len(routes.seen) == 1
    assert mock.stats.token_refresh == 1  # the next request will carry the new token


def test_a_sync_client_is_refused_with_a_clear_error(client: OAuthClient) -> None:
    manager = TokenManager(client, MemoryTokenStore())
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with (
        httpx.Client(transport=transport, auth=manager.auth(user=USER)) as sync,
        pytest.raises(ConfigurationError, match=r"httpx\.AsyncClient"),
    ):
        sync.get(ME)


def test_allowed_origins_must_be_a_list_of_absolute_urls(manager: TokenManager) -> None:
    with pytest.raises(ConfigurationError):
        manager.auth(user=USER, allowed_origins="https://files.example")
    with pytest.raises(ConfigurationError):
        manager.auth(user=USER, allowed_origins=["files.example"])


def test_the_auth_repr_names_the_user_but_no_token(manager: TokenManager) -> None:
    assert repr(manager.auth(user=USER, tenant="biz_1")) == (
        "<UserTokenAuth tenant='biz_1' user='user_mock1'>"
    )


async def test_the_providers_api_origin_gets_the_token_by_default(
    mock: MockWhop, mock_http: httpx.AsyncClient
) -> None:
    metadata = dataclasses.replace(
        whop_metadata(mock.issuer), api_base_url="https://api.mock-whop.test/v1"
    )
    client = OAuthClient(
        client_id="app_mock",
        redirect_uri="http://127.0.0.1/cb",
        provider=metadata,
        http_client=mock_http,
    )
    auth = TokenManager(client, MemoryTokenStore()).auth(user=USER)
    assert auth.sends_token_to("https://api.mock-whop.test/v1/me")
    assert auth.sends_token_to("https://mock-whop.test/oauth/userinfo")
    assert not auth.sends_token_to("https://evil.example/v1/me")
    assert not auth.sends_token_to("not a url")


async def test_one_shared_auth_object_serves_concurrent_requests_and_refreshes_once(
    manager: TokenManager, routes: Routes, mock: MockWhop
) -> None:
    old = await manager.access_token(user=USER)
    mock.expire_access_tokens()  # every request in flight gets a 401 for the old token
    async with httpx.AsyncClient(transport=routes) as http:
        answers = await asyncio.gather(
            *(http.get(ME, auth=manager.auth(user=USER)) for _ in range(20))
        )

    new = await manager.access_token(user=USER)
    assert [answer.status_code for answer in answers] == [200] * 20
    assert mock.stats.token_refresh == 1
    assert sorted(set(routes.seen)) == sorted({(ME, f"Bearer {old}"), (ME, f"Bearer {new}")})
    assert routes.seen.count((ME, f"Bearer {new}")) == 20
