"""Signing in, calling the provider as the user, refreshing and signing out, end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
from starlette_support import Env, session_cookie_value


async def test_sign_in_stores_the_grant_and_sets_a_session(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.sign_in(browser, next="/email")

    assert callback.status_code == 303
    assert callback.headers["location"] == "/email"
    page = (await browser.get("/")).json()
    assert page["signed_in"] is True
    assert page["id"] == "user_mock1"
    assert page["name"] == "Mock User"
    assert page["email"] == "mock.user@example.com"
    assert page["tenant"] == "default"
    assert page["request_user"] == "Mock User"
    assert {"authenticated", "openid", "profile", "email"} <= set(page["scopes"])
    assert await env.store.get(env.client.token_key("user_mock1", "default")) is not None


async def test_callback_redirects_away_at_once_without_referrer_or_caching(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.sign_in(browser)

    assert callback.status_code == 303
    assert callback.headers["referrer-policy"] == "no-referrer"
    assert callback.headers["cache-control"] == "no-store"
    assert callback.content == b""


async def test_me_fetches_userinfo_from_the_provider_with_the_bearer_token(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    before = env.mock.stats

    response = await browser.get("/me")

    assert response.status_code == 200
    assert response.json()["sub"] == "user_mock1"
    assert env.mock.stats.userinfo == before.userinfo + 1


async def test_relative_urls_go_to_the_providers_api(env: Env, browser: httpx.AsyncClient) -> None:
    await env.sign_in(browser)
    before = env.mock.stats.api_calls

    response = await browser.get("/account")

    assert response.status_code == 200
    assert env.mock.stats.api_calls == before + 1


async def test_an_access_token_revoked_early_is_refreshed_once_and_the_call_retried(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    env.mock.expire_access_tokens()
    before = env.mock.stats.token_refresh

    first, second = await asyncio.gather(browser.get("/me"), browser.get("/me"))

    assert (first.status_code, second.status_code) == (200, 200)
    assert env.mock.stats.token_refresh == before + 1


async def test_a_token_due_to_expire_is_refreshed_before_the_call(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    key = env.client.token_key("user_mock1", "default")
    stored = await env.store.get(key)
    assert stored is not None
    old = stored.token
    now = time.time()  # an hour-long token with 5 s left: inside the 60 s leeway
    await env.store.put(key, dataclasses.replace(old, expires_at=now + 5, issued_at=now - 3595))

    assert (await browser.get("/me")).status_code == 200

    refreshed = await env.store.get(key)
    assert refreshed is not None
    assert refreshed.token.access_token != old.access_token
    assert refreshed.token.refresh_token != old.refresh_token  # rotated and kept


async def test_two_tabs_signing_in_at_once_both_succeed(
    env: Env, browser: httpx.AsyncClient
) -> None:
    tab_one = await browser.get("/auth/login", params={"next": "/one"})
    tab_two = await browser.get("/auth/login", params={"next": "/two"})
    flow_cookies = [name for name in browser.cookies if name.startswith("whop_flow_")]
    assert len(flow_cookies) == 2

    second = await browser.get(await env.authorize(tab_two))
    first = await browser.get(await env.authorize(tab_one))

    assert (second.status_code, second.headers["location"]) == (303, "/two")
    assert (first.status_code, first.headers["location"]) == (303, "/one")
    assert not [name for name in browser.cookies if name.startswith("whop_flow_")]
    assert (await browser.get("/")).json()["signed_in"] is True


async def test_the_session_cookie_never_holds_a_token(env: Env, browser: httpx.AsyncClient) -> None:
    await env.sign_in(browser)
    stored = await env.store.get(env.client.token_key("user_mock1", "default"))
    assert stored is not None
    payload = env.whop._site.cookies.codec._session.loads(session_cookie_value(browser))

    secrets = [stored.token.access_token, stored.token.refresh_token, stored.token.id_token]
    text = repr(payload) + session_cookie_value(browser)
    assert not [secret for secret in secrets if secret and secret in text]
    assert set(payload) <= {"sid", "sub", "ten", "iat", "scp", "n", "e", "p"}


async def test_a_grant_gone_from_the_store_sends_a_page_load_back_to_login(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    await env.store.delete(env.client.token_key("user_mock1", "default"))

    page = await browser.get("/me?x=1", headers={"Accept": "text/html"})

    assert page.status_code == 303
    assert page.headers["location"] == "/auth/login?next=%2Fme%3Fx%3D1"
    assert "whop_session" not in browser.cookies
    assert (await browser.get("/")).json()["signed_in"] is False


async def test_a_refresh_token_refused_by_the_provider_gives_api_clients_a_401(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    stored = await env.store.get(env.client.token_key("user_mock1", "default"))
    assert stored is not None
    await env.client.revoke(stored.token)  # as if the user removed the app at Whop

    response = await browser.get("/me", headers={"Accept": "application/json"})

    assert response.status_code == 401
    assert response.json() == {"error": "sign_in_required"}
    assert await env.store.get(env.client.token_key("user_mock1", "default")) is None
    assert (await browser.get("/")).json()["signed_in"] is False
