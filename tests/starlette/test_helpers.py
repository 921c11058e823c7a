"""The endpoint helpers on one request: ``user_http_client``'s verbs and URLs,
``csrf_token`` and ``sign_in_url``, against a recorded API (no app, no browser)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import HTTPConnection

from whop_oauth import (
    ConfigurationError,
    MiddlewareNotInstalled,
    OAuthClient,
    SignInRequired,
    Token,
    TokenManager,
    whop_metadata,
)
from whop_oauth._no_cookies import NoCookieJar
from whop_oauth.starlette import (
    SessionData,
    WhopAuth,
    _helpers,
    csrf_token,
    sign_in_url,
    user_http_client,
)
from whop_oauth.starlette._state import SCOPE_KEY, AuthState
from whop_oauth.stores import MemoryTokenStore

PROVIDER = "https://mock-whop.test"
SESSION = SessionData("session-id-1", "user_1", "default", int(time.time()))


class Api:
    """The provider's API: records (method, url, Authorization) and answers 200."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, str(request.url), request.headers.get("authorization")))
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
async def whop(api: Api) -> AsyncIterator[WhopAuth]:
    redirect = "https://app.test/auth/callback"
    client = OAuthClient(client_id="app_1", redirect_uri=redirect, provider=whop_metadata(PROVIDER))
    manager = TokenManager(client, MemoryTokenStore())
    await manager.save(
        Token(access_token="access-1", expires_at=time.time() + 3600, refresh_token="r"),
        user=SESSION.user,
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(api), cookies=NoCookieJar())
    yield WhopAuth(client, manager, secret_keys=["k" * 32], http_client=http)
    await http.aclose()
    await client.aclose()


def connection(
    whop: WhopAuth, session: SessionData | None = SESSION, *, path: str = "/", query: bytes = b""
) -> HTTPConnection:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "server": ("app.test", 443),
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"app.test")],
    }
    scope[SCOPE_KEY] = AuthState(whop._site, session)
    return HTTPConnection(scope)


@pytest.mark.parametrize("verb", ["get", "post", "put", "patch", "delete"])
async def test_every_verb_sends_its_method_with_the_users_token(
    whop: WhopAuth, api: Api, verb: str
) -> None:
    client = user_http_client(connection(whop))

    response = await getattr(client, verb)("/things/1", params={"expand": "all"})

    assert response.status_code == 200
    assert api.seen == [
        (verb.upper(), f"{PROVIDER}/api/v1/things/1?expand=all", "Bearer access-1")
    ]


async def test_stream_sends_the_token_and_reads_the_body(whop: WhopAuth, api: Api) -> None:
    async with user_http_client(connection(whop)).stream("GET", "/things") as response:
        body = await response.aread()

    assert body == b'{"ok":true}'
    assert api.seen == [("GET", f"{PROVIDER}/api/v1/things", "Bearer access-1")]


async def test_a_relative_url_object_is_joined_to_the_api_base(whop: WhopAuth, api: Api) -> None:
    client = user_http_client(connection(whop))

    await client.get(httpx.URL("/things"))
    await client.get(httpx.URL("XL-items"))  # no leading slash: only slashes are stripped

    assert [url for _, url, _ in api.seen] == [
        f"{PROVIDER}/api/v1/things",
        f"{PROVIDER}/api/v1/XL-items",
    ]


async def test_an_api_base_with_a_trailing_slash_gets_no_double_slash(
    whop: WhopAuth, api: Api
) -> None:
    metadata = dataclasses.replace(whop_metadata(PROVIDER), api_base_url=f"{PROVIDER}/api/v2/")
    client = OAuthClient(client_id="app_1", redirect_uri="https://app.test/cb", provider=metadata)
    conn = connection(whop)
    conn.scope[SCOPE_KEY] = AuthState(dataclasses.replace(whop._site, client=client), SESSION)

    await user_http_client(conn).get("/things")

    assert [url for _, url, _ in api.seen] == [f"{PROVIDER}/api/v2/things"]
    await client.aclose()


async def test_another_origin_is_refused_before_anything_is_sent(
    whop: WhopAuth, api: Api
) -> None:
    client = user_http_client(connection(whop))

    with pytest.raises(ConfigurationError) as refused:
        await client.get("https://elsewhere.test/things")

    assert str(refused.value) == "the user's token is only sent to the provider's origins"
    assert api.seen == []


async def test_a_path_without_an_api_base_is_a_configuration_error(
    whop: WhopAuth, api: Api
) -> None:
    metadata = dataclasses.replace(whop_metadata(PROVIDER), api_base_url=None)
    client = OAuthClient(client_id="app_1", redirect_uri="https://app.test/cb", provider=metadata)
    site = dataclasses.replace(whop._site, client=client)
    conn = connection(whop)
    conn.scope[SCOPE_KEY] = AuthState(site, SESSION)

    with pytest.raises(ConfigurationError) as refused:
        await user_http_client(conn).get("/things")

    assert str(refused.value) == "the provider has no API base URL: use absolute URLs"
    assert api.seen == []
    await client.aclose()


def test_nobody_signed_in_is_sign_in_required(whop: WhopAuth) -> None:
    with pytest.raises(SignInRequired) as raised:
        user_http_client(connection(whop, None))

    assert str(raised.value) == "nobody is signed in"


def test_the_csrf_token_is_the_session_id_and_empty_when_signed_out(whop: WhopAuth) -> None:
    assert csrf_token(connection(whop)) == SESSION.session_id
    assert csrf_token(connection(whop, None)) == ""


def test_sign_in_url_returns_to_the_current_page(whop: WhopAuth) -> None:
    assert sign_in_url(connection(whop, path="/reports", query=b"year=2026")) == (
        "/auth/login?next=%2Freports%3Fyear%3D2026"
    )
    assert sign_in_url(connection(whop, path="/reports")) == "/auth/login?next=%2Freports"


def test_a_sessions_requests_share_one_client_and_no_other_session_or_site_does(
    whop: WhopAuth,
) -> None:
    first = user_http_client(connection(whop))
    other_site = connection(whop)
    other_site.scope[SCOPE_KEY] = AuthState(dataclasses.replace(whop._site), SESSION)

    assert user_http_client(connection(whop)) is first  # the same session, the same site
    assert user_http_client(other_site) is not first  # another site: a memory of its own
    assert user_http_client(connection(whop)) is first
    # The same session id back with another user (a forged or rebuilt session).
    other_session = dataclasses.replace(SESSION, user="user_2")
    assert user_http_client(connection(whop, other_session)).auth is not first.auth
    assert user_http_client(connection(whop, other_session)).auth._user == "user_2"
    with pytest.raises(AttributeError):
        first.auth = first.auth  # type: ignore[misc]  # shared by the session's requests


async def test_the_api_base_is_worked_out_once_per_metadata_document(
    whop: WhopAuth, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bases: list[str | None] = []
    original = _helpers._api_base

    def counting(metadata: Any) -> str:
        bases.append(metadata.api_base_url)
        return original(metadata)

    monkeypatch.setattr(_helpers, "_api_base", counting)
    client = user_http_client(connection(whop))

    for _ in range(3):
        await client.get("/things")

    assert bases == [f"{PROVIDER}/api/v1"]
    assert len(api.seen) == 3


async def test_each_path_is_parsed_once_per_metadata_document_whoever_asks(
    whop: WhopAuth, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []

    class CountingURL(httpx.URL):
        def __init__(self, url: Any = "", **kwargs: Any) -> None:
            if isinstance(url, str):
                parsed.append(url)
            super().__init__(url, **kwargs)

    token = Token(access_token="access-2", expires_at=time.time() + 3600, refresh_token="r")
    await whop._site.manager.save(token, user="user_2")
    first = user_http_client(connection(whop))
    other = user_http_client(connection(whop, dataclasses.replace(SESSION, user="user_2")))
    await first.get("/warm")  # metadata and token cached, before counting
    await other.get("/warm")
    with monkeypatch.context() as counting:
        counting.setattr(_helpers.httpx, "URL", CountingURL)
        for client in (first, other, first):
            await client.get("/things")
            await client.get("/other")

    ours = [url for url in parsed if url.startswith(PROVIDER)]
    assert ours == [f"{PROVIDER}/api/v1/things", f"{PROVIDER}/api/v1/other"]
    assert [url for _, url, _ in api.seen[2:]] == [
        f"{PROVIDER}/api/v1/things",
        f"{PROVIDER}/api/v1/other",
    ] * 3


async def test_a_path_with_a_query_is_parsed_every_time_and_not_kept(
    whop: WhopAuth, api: Api
) -> None:
    client = user_http_client(connection(whop))

    await client.get("/licenses/validate?key=secret-license-key")
    await client.get("/things")

    assert list(whop._site.api_urls) == ["/things"]
    assert api.seen[0][1] == f"{PROVIDER}/api/v1/licenses/validate?key=secret-license-key"


async def test_params_of_one_call_do_not_stay_on_the_kept_url(whop: WhopAuth, api: Api) -> None:
    client = user_http_client(connection(whop))

    await client.get("/things", params={"page": "2"})
    await client.get("/things")

    assert [url for _, url, _ in api.seen] == [
        f"{PROVIDER}/api/v1/things?page=2",
        f"{PROVIDER}/api/v1/things",
    ]


async def test_kept_api_urls_are_bounded_and_the_oldest_goes_first(
    whop: WhopAuth, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_helpers, "URLS_KEPT", 2)
    client = user_http_client(connection(whop))

    paths = ["/a", "/b", "/a", "/c"]
    for path in paths:
        await client.get(path)

    assert list(whop._site.api_urls) == ["/b", "/c"]  # the oldest kept, not the least used
    assert [url for _, url, _ in api.seen] == [f"{PROVIDER}/api/v1{path}" for path in paths]


@pytest.mark.parametrize(
    "moved_base",
    [f"{PROVIDER}/api/v2", "https://api.mock-whop.test/v2"],
    ids=["same-origin", "another-origin"],
)
async def test_the_api_base_follows_the_providers_metadata_when_it_changes(
    whop: WhopAuth, api: Api, monkeypatch: pytest.MonkeyPatch, moved_base: str
) -> None:
    client = user_http_client(connection(whop))
    await client.get("/things")
    moved = dataclasses.replace(whop_metadata(PROVIDER), api_base_url=moved_base)
    monkeypatch.setattr(whop._site.client, "fresh_metadata", lambda: moved)
    monkeypatch.setattr(whop._site.client, "_static", moved)  # the token's origins too

    await client.get("/things")

    # The kept URL of "/things" was for the old metadata; the path and the token move.
    assert api.seen == [
        ("GET", f"{PROVIDER}/api/v1/things", "Bearer access-1"),
        ("GET", f"{moved_base}/things", "Bearer access-1"),
    ]


def test_without_the_middleware_user_http_client_says_what_to_install(whop: WhopAuth) -> None:
    bare = HTTPConnection({"type": "http", "headers": []})

    with pytest.raises(MiddlewareNotInstalled):
        user_http_client(bare)


def test_remembered_clients_are_bounded_and_the_oldest_goes_first(
    whop: WhopAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_helpers, "CLIENTS_KEPT", 3)
    sessions = [dataclasses.replace(SESSION, session_id=f"sid-{i}") for i in range(4)]
    clients = [user_http_client(connection(whop, s)) for s in sessions]

    assert list(whop._site.clients) == ["sid-1", "sid-2", "sid-3"]
    assert user_http_client(connection(whop, sessions[3])) is clients[3]
    assert user_http_client(connection(whop, sessions[0])) is not clients[0]  # rebuilt
    assert list(whop._site.clients) == ["sid-2", "sid-3", "sid-0"]
    user_http_client(connection(whop, dataclasses.replace(sessions[3], user="user_9")))
    assert list(whop._site.clients) == ["sid-2", "sid-3", "sid-0"]  # replaced in place
