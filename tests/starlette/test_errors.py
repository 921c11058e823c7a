"""Every way the callback can fail: a clear page, the right status, nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from itsdangerous.timed import TimestampSigner
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette_support import Env, make_env

from whop_oauth import (
    StateMismatchError,
    Token,
    TokenKey,
    TokenStoreError,
    WhopOAuthError,
)
from whop_oauth.stores import MemoryTokenStore, StoredToken
from whop_oauth.testing import MockWhop


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urlencode(query)).geturl()


async def assert_nothing_stored(env: Env, browser: httpx.AsyncClient) -> None:
    assert await env.store.get(env.client.token_key("user_mock1", "default")) is None
    assert (await browser.get("/")).json()["signed_in"] is False


def assert_error_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/html")
    assert "Try again" in response.text


async def test_access_denied_shows_an_escaped_page_and_stores_nothing(
    env: Env, browser: httpx.AsyncClient
) -> None:
    env.mock.deny_next("access_denied", "<script>alert('x')</script>")
    callback = await env.authorize(await browser.get("/auth/login"))

    response = await browser.get(callback)

    assert_error_page(response, 400)
    assert "Sign-in cancelled" in response.text
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
    assert not [name for name in browser.cookies if name.startswith("whop_flow_")]
    await assert_nothing_stored(env, browser)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"state": None}, id="missing state"),
        pytest.param({"state": "A" * 32}, id="unknown state"),
        pytest.param({"state": "!"}, id="malformed state"),
    ],
)
async def test_a_callback_without_this_browsers_state_is_refused(
    env: Env, browser: httpx.AsyncClient, change: dict[str, str | None]
) -> None:
    callback = await env.authorize(await browser.get("/auth/login"))
    before = env.mock.stats.token_code

    response = await browser.get(with_query(callback, **change))

    assert_error_page(response, 400)
    assert "Sign-in link expired" in response.text
    assert env.mock.stats.token_code == before  # the code was never sent
    await assert_nothing_stored(env, browser)


async def test_a_state_that_matches_the_cookie_name_but_not_the_flow_is_refused(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.authorize(await browser.get("/auth/login"))
    state = dict(parse_qsl(urlsplit(callback).query))["state"]

    response = await browser.get(with_query(callback, state=state[:16] + "x" * 16))

    assert_error_page(response, 400)
    await assert_nothing_stored(env, browser)


async def test_a_replayed_callback_is_refused_because_the_state_was_used(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.authorize(await browser.get("/auth/login"))
    assert (await browser.get(callback)).status_code == 303
    before = env.mock.stats.token_code

    replay = await browser.get(callback)

    assert_error_page(replay, 400)
    assert env.mock.stats.token_code == before


async def test_a_callback_in_another_browser_is_refused(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.authorize(await browser.get("/auth/login"))
    async with env.browser() as other:
        response = await other.get(callback)
        assert_error_page(response, 400)
        await assert_nothing_stored(env, other)


async def test_a_tampered_flow_cookie_is_refused(env: Env, browser: httpx.AsyncClient) -> None:
    callback = await env.authorize(await browser.get("/auth/login"))
    (name,) = [name for name in browser.cookies if name.startswith("whop_flow_")]
    value = browser.cookies[name]
    browser.cookies.set(name, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))

    response = await browser.get(callback)

    assert_error_page(response, 400)
    await assert_nothing_stored(env, browser)


async def test_a_flow_cookie_older_than_ten_minutes_is_refused(
    env: Env, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 601)
    login = await browser.get("/auth/login")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)

    response = await browser.get(await env.authorize(login))

    assert_error_page(response, 400)
    await assert_nothing_stored(env, browser)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(400, {"error": "invalid_grant"}, 400, id="invalid_grant"),
        pytest.param(500, b"oops", 502, id="provider 500"),
        pytest.param(503, b"maintenance", 503, id="provider 503"),
        pytest.param(401, {"error": "invalid_client"}, 502, id="invalid_client"),
        pytest.param(200, b"not json", 502, id="garbage"),
    ],
)
async def test_a_failed_code_exchange_shows_the_matching_status_and_stores_nothing(
    env: Env, browser: httpx.AsyncClient, status: int, body: Any, expected: int
) -> None:
    callback = await env.authorize(await browser.get("/auth/login"))
    env.mock.fail_next("token", status, body, times=5)

    response = await browser.get(callback)

    assert_error_page(response, expected)
    await assert_nothing_stored(env, browser)


class Unreachable(httpx.AsyncBaseTransport):
    """Passes requests to the mock until told to fail them with an httpx error."""

    def __init__(self, mock: MockWhop) -> None:
        self.inner = mock.transport()
        self.error: type[httpx.TransportError] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.error is not None:
            raise self.error("simulated", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[Env, Unreachable]]:
    mock = MockWhop()
    transport = Unreachable(mock)
    async with httpx.AsyncClient(transport=transport) as http:
        env = make_env(mock, http)
        yield env, transport
        await env.provider.aclose()


@pytest.mark.parametrize(
    ("error", "expected"),
    [(httpx.ReadTimeout, 504), (httpx.ConnectError, 503), (httpx.ConnectTimeout, 504)],
)
async def test_an_unreachable_provider_gives_503_or_504_and_stores_nothing(
    flaky: tuple[Env, Unreachable], error: type[httpx.TransportError], expected: int
) -> None:
    env, transport = flaky
    async with env.browser() as browser:
        callback = await env.authorize(await browser.get("/auth/login"))
        transport.error = error

        response = await browser.get(callback)

        assert_error_page(response, expected)
        assert "mock-whop.test did not answer" in response.text  # the issuer's host
        transport.error = None
        await assert_nothing_stored(env, browser)


async def test_an_app_error_handler_gets_the_error_and_the_status(
    env_factory: Callable[..., Env],
) -> None:
    seen: list[tuple[type[WhopOAuthError], int]] = []

    async def handler(request: Request, error: WhopOAuthError, status: int) -> JSONResponse:
        seen.append((type(error), status))
        return JSONResponse({"failed": type(error).__name__}, status_code=status)

    env = env_factory(error_handler=handler)
    async with env.browser() as browser:
        response = await browser.get("/auth/callback?code=x&state=" + "s" * 32)

    assert response.status_code == 400
    assert response.json() == {"failed": "StateMismatchError"}
    assert response.headers["referrer-policy"] == "no-referrer"
    assert seen == [(StateMismatchError, 400)]


@pytest.mark.parametrize(
    ("change", "extra"),
    [
        pytest.param({"iss": "https://evil.example"}, "", id="issuer mix-up"),
        pytest.param({}, "&code=second", id="duplicated code"),
        pytest.param({"code": None}, "", id="no code"),
        pytest.param({}, "&access_token=leaked", id="front-channel token"),
    ],
)
async def test_a_malformed_callback_is_refused_before_the_code_is_sent(
    env: Env, browser: httpx.AsyncClient, change: dict[str, str | None], extra: str
) -> None:
    callback = await env.authorize(await browser.get("/auth/login"))
    before = env.mock.stats.token_requests

    response = await browser.get(with_query(callback, **change) + extra)

    assert_error_page(response, 400)
    assert env.mock.stats.token_requests == before
    await assert_nothing_stored(env, browser)


class BrokenStore(MemoryTokenStore):
    async def put(self, key: TokenKey, token: Token, **options: Any) -> StoredToken:
        raise TokenStoreError("the disk is full")


async def test_a_store_failure_stores_nothing_and_revokes_the_unused_grant(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory(store=BrokenStore())
    async with env.browser() as browser:
        response = await env.sign_in(browser)

        assert_error_page(response, 503)
        assert "could not save your sign-in" in response.text
        assert [grant.revoked for grant in env.mock.grants] == [True]
        assert (await browser.get("/")).json()["signed_in"] is False


async def test_a_failed_discovery_shows_an_error_page_at_login(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    env = make_env(mock, http, provider=mock.issuer)  # discovered, not preset
    mock.fail_next("discovery", 500)
    async with env.browser() as browser:
        response = await browser.get("/auth/login")

        assert_error_page(response, 502)
        assert not [name for name in browser.cookies if name.startswith("whop_flow_")]
        # Discovery is retried on the next attempt, and then sign-in works.
        assert (await env.sign_in(browser)).status_code == 303
    await env.provider.aclose()


async def test_without_a_profile_in_the_id_token_it_is_read_from_userinfo(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    env = make_env(mock, http, client_options={"scope": "openid"})
    before = mock.stats.userinfo
    async with env.browser() as browser:
        assert (await env.sign_in(browser)).status_code == 303
        page = (await browser.get("/")).json()

    assert page["id"] == "user_mock1"
    assert page["scopes"] == ["authenticated", "openid"]
    assert mock.stats.userinfo == before + 1
    await env.provider.aclose()
