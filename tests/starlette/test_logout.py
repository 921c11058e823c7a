"""Signing out: POST only, CSRF-checked, revoked at the provider, deleted here."""

from __future__ import annotations

import httpx
import pytest
from starlette_support import APP_ORIGIN, Env

KEY = ("user_mock1", "default")


async def signed_in(env: Env, browser: httpx.AsyncClient) -> str:
    """Sign in; returns the CSRF token the sign-out form carries."""
    await env.sign_in(browser)
    token = env.whop._site.cookies.codec.loads_session(
        browser.cookies["whop_session"], max_age=60
    )[0]
    assert token is not None
    return token.session_id


async def test_sign_out_revokes_at_the_provider_deletes_the_grant_and_clears_the_cookie(
    env: Env, browser: httpx.AsyncClient
) -> None:
    csrf = await signed_in(env, browser)
    stored = await env.store.get(env.client.token_key(*KEY))
    assert stored is not None
    assert stored.token.refresh_token
    before = env.mock.stats.revoke

    response = await browser.post(
        "/auth/logout", data={"csrf_token": csrf}, headers={"Origin": APP_ORIGIN}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert env.mock.stats.revoke == before + 1
    assert env.mock.is_revoked(stored.token.refresh_token)
    assert await env.store.get(env.client.token_key(*KEY)) is None
    assert (await browser.get("/")).json()["signed_in"] is False


async def test_a_failed_revocation_still_signs_out_locally(
    env: Env, browser: httpx.AsyncClient
) -> None:
    csrf = await signed_in(env, browser)
    env.mock.fail_next("revoke", 500, times=10)

    response = await browser.post("/auth/logout", data={"csrf_token": csrf})

    assert response.status_code == 303
    assert await env.store.get(env.client.token_key(*KEY)) is None
    assert (await browser.get("/")).json()["signed_in"] is False


async def test_sign_out_accepts_the_token_in_a_header_for_script_clients(
    env: Env, browser: httpx.AsyncClient
) -> None:
    csrf = await signed_in(env, browser)

    response = await browser.post("/auth/logout", headers={"X-CSRF-Token": csrf})

    assert response.status_code == 303
    assert (await browser.get("/")).json()["signed_in"] is False


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        pytest.param({}, {}, id="no token"),
        pytest.param({"csrf_token": "wrong"}, {}, id="wrong token"),
        pytest.param({"csrf_token": "é"}, {}, id="non-ascii token"),
        pytest.param({}, {"X-CSRF-Token": "\u00e9".encode("latin-1")}, id="non-ascii header"),
        pytest.param({"csrf_token": ["a", "b"]}, {}, id="two tokens"),
        pytest.param(None, {"Origin": "https://evil.com"}, id="cross-origin"),
        pytest.param(None, {"Origin": "null"}, id="opaque origin"),
        pytest.param(None, {"Sec-Fetch-Site": "cross-site"}, id="cross-site fetch"),
        pytest.param(None, {"Sec-Fetch-Site": "same-site"}, id="sibling subdomain"),
    ],
)
async def test_a_forged_sign_out_is_refused_and_changes_nothing(
    env: Env,
    browser: httpx.AsyncClient,
    data: dict[str, object] | None,
    headers: dict[str, str],
) -> None:
    csrf = await signed_in(env, browser)
    before = env.mock.stats.revoke

    response = await browser.post(
        "/auth/logout", data=data if data is not None else {"csrf_token": csrf}, headers=headers
    )

    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert env.mock.stats.revoke == before
    assert await env.store.get(env.client.token_key(*KEY)) is not None
    assert (await browser.get("/")).json()["signed_in"] is True


async def test_sign_out_is_post_only(env: Env, browser: httpx.AsyncClient) -> None:
    await signed_in(env, browser)

    assert (await browser.get("/auth/logout")).status_code == 405
    assert (await browser.get("/")).json()["signed_in"] is True


async def test_signing_out_when_signed_out_just_goes_home(browser: httpx.AsyncClient) -> None:
    response = await browser.post("/auth/logout")

    assert response.status_code == 303
    assert response.headers["location"] == "/"
