"""The Starlette integration against a provider shaped unlike Whop: an issuer with a
path whose OpenID and RFC 8414 documents each lack what the other has."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette_support import APP_ORIGIN, Env, make_env

from whop_oauth import OAuthClient, ProviderMetadata, TokenManager, UserTokenAuth
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop

ISSUER = "https://idp.example/o"


@pytest.fixture
def mock() -> MockWhop:
    return MockWhop(ISSUER, well_known="split")


@pytest.fixture
async def env(mock: MockWhop, http: httpx.AsyncClient) -> AsyncIterator[Env]:
    env = make_env(mock, http, provider=mock.issuer)  # discovered, not a preset
    yield env
    await env.provider.aclose()


async def sign_in(env: Env, browser: httpx.AsyncClient) -> str:
    assert (await env.sign_in(browser)).status_code == 303
    record = env.whop._site.cookies.codec.loads_session(
        browser.cookies["whop_session"], max_age=60
    )[0]
    assert record is not None
    return record.session_id


async def test_userinfo_and_revocation_both_work_when_each_is_in_one_document(
    env: Env, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    csrf = await sign_in(env, browser)
    stored = await env.store.get(env.client.token_key("user_mock1"))
    assert stored is not None

    me = await browser.get("/me")  # userinfo, from the OpenID document
    out = await browser.post("/auth/logout", data={"csrf_token": csrf})

    assert me.status_code == 200
    assert me.json()["sub"] == "user_mock1"
    assert out.status_code == 303
    assert env.mock.is_revoked(stored.token.refresh_token)  # from the RFC 8414 one
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_failed_revocation_at_sign_out_is_a_warning_with_the_providers_reason(
    env: Env, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    csrf = await sign_in(env, browser)
    stored = await env.store.get(env.client.token_key("user_mock1"))
    assert stored is not None
    assert stored.token.refresh_token
    echoed = f"unknown token {stored.token.refresh_token}"  # a provider echoing the token
    body = {"error": "invalid_request", "error_description": echoed}
    env.mock.fail_next("revoke", 400, body=body)

    out = await browser.post(
        "/auth/logout", data={"csrf_token": csrf}, headers={"Origin": APP_ORIGIN}
    )

    assert out.status_code == 303
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1
    assert lines[0].startswith(
        "revoking a signed-out grant failed (ProviderError invalid_request: "
        "unknown token [redacted] (HTTP 400) after "
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert stored.token.refresh_token not in logged
    assert stored.token.access_token not in logged


async def test_error_pages_name_the_provider_by_its_host_and_the_log_gives_the_reason(
    env: Env, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    env.mock.deny_next("server_error", "the directory is down")

    page = await env.sign_in(browser)

    assert page.status_code == 400
    assert "idp.example did not complete the sign-in." in page.text
    assert "idp.example said:" in page.text
    assert "Whop" not in page.text
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "sign-in failed: AuthorizationDenied server_error: the directory is down (HTTP 400)"
    ]


async def test_a_configured_provider_name_is_used_on_error_pages(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    env = make_env(mock, http, provider=mock.issuer, provider_name="Acme ID")
    mock.deny_next("server_error", "down")
    async with env.browser() as browser:
        page = await env.sign_in(browser)

    assert "Acme ID did not complete the sign-in." in page.text
    await env.provider.aclose()


async def test_relative_api_urls_go_to_the_configured_api_base(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    client_options = {"api_base_url": f"{ISSUER}/api/v1", "max_retries": 0}
    env = make_env(mock, http, provider=mock.issuer, client_options=client_options)
    async with env.browser() as browser:
        await sign_in(env, browser)
        account = await browser.get("/account")  # user_http_client(request).get("/me")

    assert account.status_code == 200
    assert account.json()["id"] == "user_mock1"
    await env.provider.aclose()


async def test_the_users_token_may_go_to_a_userinfo_endpoint_on_another_host() -> None:
    metadata = ProviderMetadata(
        issuer="https://accounts.idp.example",
        authorization_endpoint="https://accounts.idp.example/authorize",
        token_endpoint="https://oauth2.idp.example/token",
        userinfo_endpoint="https://userinfo.idp.example/v1/userinfo",
    )
    client = OAuthClient(client_id="app_1", redirect_uri=f"{APP_ORIGIN}/cb", provider=metadata)
    auth = UserTokenAuth(TokenManager(client, MemoryTokenStore()), user="user_1")

    assert auth.sends_token_to("https://userinfo.idp.example/v1/userinfo")
    assert not auth.sends_token_to("https://oauth2.idp.example.evil.test/x")
    await client.aclose()


async def test_api_calls_use_the_discovered_base_and_rediscover_after_the_ttl(
    mock: MockWhop, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    discoveries: list[str] = []

    async def seen(request: httpx.Request) -> None:
        if "/.well-known/" in request.url.path:
            discoveries.append(request.url.path)

    http.event_hooks["request"].append(seen)
    client_options = {"api_base_url": f"{ISSUER}/api/v1", "discovery_ttl": 60}
    env = make_env(mock, http, provider=mock.issuer, client_options=client_options)
    async with env.browser() as browser:
        await sign_in(env, browser)
        discoveries.clear()
        for _ in range(3):  # within the TTL: the metadata in memory, nothing fetched
            assert (await browser.get("/account")).status_code == 200
        assert discoveries == []

        later = time.monotonic() + 61
        monkeypatch.setattr(time, "monotonic", lambda: later)
        assert (await browser.get("/account")).status_code == 200

    assert discoveries  # stale: the API call waited for the document to be fetched again
    await env.provider.aclose()
