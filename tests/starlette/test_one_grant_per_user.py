"""One live grant per (tenant, user): after every step, exactly the grants the app holds
are live at the provider (two browsers of one user, one or two workers)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from starlette_support import APP_ORIGIN, Env, make_env

from whop_oauth.stores import TokenStore
from whop_oauth.testing import MockWhop


def csrf_of(env: Env, browser: httpx.AsyncClient) -> str:
    codec = env.whop._site.cookies.codec
    session, _ = codec.loads_session(browser.cookies["whop_session"], max_age=60)
    assert session is not None
    return session.session_id


async def post_sign_out(env: Env, browser: httpx.AsyncClient, path: str) -> None:
    response = await browser.post(
        path, data={"csrf_token": csrf_of(env, browser)}, headers={"Origin": APP_ORIGIN}
    )
    assert response.status_code == 303, response.text


async def held_refresh_tokens(env: Env) -> list[str]:
    """The grants the app holds for the user (at most one: it is keyed by tenant and user)."""
    stored = await env.store.get(env.client.token_key("user_mock1"))
    return [] if stored is None else [str(stored.token.refresh_token)]


async def assert_live_grants_are_the_held_ones(env: Env, mock: MockWhop) -> None:
    held = await held_refresh_tokens(env)
    live = [grant.grant_id for grant in mock.grants if not grant.revoked]  # every grant ever
    assert len(live) == len(held), f"{len(live)} live grants, {len(held)} held"
    assert not any(mock.is_revoked(token) for token in held)


async def signed_in(browser: httpx.AsyncClient) -> bool:
    return bool((await browser.get("/")).json()["signed_in"])


def two_workers(
    mock: MockWhop, http: httpx.AsyncClient, shared_store: Callable[[], TokenStore]
) -> tuple[Env, Env]:
    return (
        make_env(mock, http, store=shared_store()),  # type: ignore[arg-type]
        make_env(mock, http, store=shared_store()),  # type: ignore[arg-type]
    )


async def two_browsers_sign_in_and_out(one: Env, two: Env, mock: MockWhop) -> None:
    """Browser A on worker ``one``, browser B on worker ``two``; checked after each step."""
    async with one.browser() as a, two.browser() as b:
        await one.sign_in(a)
        await assert_live_grants_are_the_held_ones(one, mock)

        await two.sign_in(b)  # replaces A's grant: the replaced one is revoked
        await assert_live_grants_are_the_held_ones(one, mock)
        assert (await a.get("/me")).status_code == 200  # A acts with the shared grant

        await post_sign_out(one, a, "/auth/logout")  # B's session still needs the grant
        await assert_live_grants_are_the_held_ones(one, mock)
        assert len(await held_refresh_tokens(one)) == 1
        assert (await b.get("/me")).status_code == 200

        await post_sign_out(two, b, "/auth/logout")  # the last session: grant revoked
        await assert_live_grants_are_the_held_ones(one, mock)
        assert await held_refresh_tokens(one) == []
    assert len(mock.grants) == 2


async def test_two_browsers_signing_in_and_out_leave_exactly_the_held_grant_live(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    env = make_env(mock, http)
    await two_browsers_sign_in_and_out(env, env, mock)


async def test_two_browsers_on_two_workers_leave_exactly_the_held_grant_live(
    mock: MockWhop, http: httpx.AsyncClient, shared_store: Callable[[], TokenStore]
) -> None:
    await two_browsers_sign_in_and_out(*two_workers(mock, http, shared_store), mock)


async def test_sign_out_everywhere_ends_every_session_and_revokes_the_grant(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    env = make_env(mock, http, logout_everywhere_path="/auth/logout/everywhere")
    async with env.browser() as a, env.browser() as b:
        await env.sign_in(a)
        await env.sign_in(b)
        await assert_live_grants_are_the_held_ones(env, mock)

        await post_sign_out(env, a, "/auth/logout/everywhere")

        await assert_live_grants_are_the_held_ones(env, mock)
        assert await held_refresh_tokens(env) == []
        assert not await signed_in(b)
        assert not await signed_in(a)


async def test_sign_out_everywhere_reaches_sessions_made_by_another_worker(
    mock: MockWhop, http: httpx.AsyncClient, shared_store: Callable[[], TokenStore]
) -> None:
    one, two = two_workers(mock, http, shared_store)
    async with one.browser() as a, two.browser() as b:
        await one.sign_in(a)
        await two.sign_in(b)

        ended = await one.manager.sign_out_everywhere(user="user_mock1")

        assert ended == 2
        await assert_live_grants_are_the_held_ones(one, mock)
        assert await held_refresh_tokens(one) == []
        two.manager.sessions._memory.clear()  # as after its (at most 5 s) window
        assert not await signed_in(b)


async def test_grants_kept_for_background_work_survive_sign_out_until_signed_out_everywhere(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    env = make_env(mock, http, manager_options={"keep_grants_for_background": True})
    async with env.browser() as a, env.browser() as b:
        await env.sign_in(a)
        await env.sign_in(b)
        await post_sign_out(env, a, "/auth/logout")
        await post_sign_out(env, b, "/auth/logout")

        await assert_live_grants_are_the_held_ones(env, mock)
        assert len(await held_refresh_tokens(env)) == 1  # the background job still acts
        assert await env.manager.access_token(user="user_mock1")

        await env.manager.sign_out_everywhere(user="user_mock1")
        await assert_live_grants_are_the_held_ones(env, mock)
        assert await held_refresh_tokens(env) == []


async def test_a_failed_revocation_of_a_replaced_grant_is_logged_and_retried_later(
    mock: MockWhop, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = make_env(mock, http)
    async with env.browser() as a, env.browser() as b, env.browser() as c:
        await env.sign_in(a)
        first = (await held_refresh_tokens(env))[0]
        mock.fail_next("revoke", 503)

        response = await env.sign_in(b)  # the revocation fails: sign-in goes on

        assert response.status_code == 303
        assert await signed_in(b)
        assert not mock.is_revoked(first)  # still live, and remembered
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage().split(" after ")[0] for r in warnings] == [
            "revoking a replaced grant failed (ProviderError temporarily_unavailable: "
            "Try again later (HTTP 503)"
        ]

        await env.sign_in(c)  # the next replacement succeeds, and retries the first
        assert mock.is_revoked(first)
        await assert_live_grants_are_the_held_ones(env, mock)
        assert await env.manager.revoke_pending() == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert first not in logged
