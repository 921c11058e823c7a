"""Sessions are server-side records: sign-out ends every copy of the cookie, everywhere."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from starlette_support import APP_ORIGIN, Env, make_env, replace_session_cookie

from whop_oauth import TokenStoreError
from whop_oauth.stores import MemoryTokenStore, TokenStore
from whop_oauth.testing import MockWhop


def csrf_of(env: Env, browser: httpx.AsyncClient) -> str:
    codec = env.whop._site.cookies.codec
    session, _ = codec.loads_session(browser.cookies["whop_session"], max_age=60)
    assert session is not None
    return session.session_id


async def sign_out(env: Env, browser: httpx.AsyncClient, path: str = "/auth/logout") -> None:
    response = await browser.post(
        path, data={"csrf_token": csrf_of(env, browser)}, headers={"Origin": APP_ORIGIN}
    )
    assert response.status_code == 303, response.text


def copy_of(env: Env, browser: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another client holding a copy of ``browser``'s session cookie (a thief's script)."""
    thief = env.browser()
    replace_session_cookie(thief, browser.cookies["whop_session"])
    return thief


async def test_a_copied_cookie_is_signed_out_when_its_browser_signs_out(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    async with copy_of(env, browser) as thief:
        assert (await thief.get("/me")).status_code == 200
        await sign_out(env, browser)

        home = await thief.get("/")
        assert home.json()["signed_in"] is False
        assert "Max-Age=0" in home.headers["set-cookie"]  # and the dead cookie is dropped
        assert (await thief.get("/me")).status_code == 401


async def test_a_cookie_copied_before_sign_out_never_acts_with_the_next_sign_in(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    stolen = browser.cookies["whop_session"]
    await sign_out(env, browser)
    await env.sign_in(browser)  # the victim comes back: a new grant is stored
    assert (await browser.get("/me")).status_code == 200

    async with env.browser() as thief:
        replace_session_cookie(thief, stolen)
        assert (await thief.get("/me")).status_code == 401
        assert (await thief.get("/")).json()["signed_in"] is False


async def test_signing_in_again_ends_the_browsers_previous_session(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    async with copy_of(env, browser) as thief:
        assert (await thief.get("/me")).status_code == 200
        await env.sign_in(browser)  # no sign-out in between

        assert (await thief.get("/me")).status_code == 401
        assert (await browser.get("/me")).status_code == 200


async def test_a_returning_browser_costs_one_store_read_per_cache_window(
    env: Env, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await env.sign_in(browser)
    reads: list[str] = []
    real = env.store.get_session

    async def counting(id_hash: str) -> object:
        reads.append(id_hash)
        return await real(id_hash)

    monkeypatch.setattr(env.store, "get_session", counting)
    registry = env.manager.sessions
    registry._memory.clear()  # as if this process had never seen the session

    for _ in range(20):
        assert (await browser.get("/")).json()["signed_in"] is True
    assert len(reads) == 1


async def test_a_session_store_outage_answers_503_and_keeps_the_cookie(
    env: Env,
    browser: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await env.sign_in(browser)
    env.manager.sessions._memory.clear()

    async def down(id_hash: str) -> object:
        raise TokenStoreError("Redis token store: ConnectionError")

    monkeypatch.setattr(env.store, "get_session", down)
    response = await browser.get("/")
    assert response.status_code == 503
    assert "set-cookie" not in response.headers  # nobody is signed out by an outage
    assert response.text == "Service unavailable, please try again."
    assert response.headers["cache-control"] == "no-store"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "session store unavailable: TokenStoreError"
    ]


# -- two app instances (two workers) on one shared store --------------------------------


async def test_a_sign_out_in_one_worker_ends_the_session_in_another_within_five_seconds(
    mock: MockWhop, http: httpx.AsyncClient, shared_store: Callable[[], TokenStore]
) -> None:
    one = make_env(mock, http, store=shared_store())  # type: ignore[arg-type]
    two = make_env(mock, http, store=shared_store())  # type: ignore[arg-type]
    async with one.browser() as on_one, two.browser() as on_two:
        await one.sign_in(on_one)
        replace_session_cookie(on_two, on_one.cookies["whop_session"])  # the load balancer
        assert (await on_two.get("/")).json()["signed_in"] is True  # worker two remembers it
        now = [0.0]
        two.manager.sessions._clock = lambda: now[0]
        two.manager.sessions._memory.clear()
        assert (await on_two.get("/")).json()["signed_in"] is True

        await sign_out(one, on_one)

        now[0] = 4.9  # inside worker two's window it may still answer from memory
        assert (await on_two.get("/")).json()["signed_in"] is True
        now[0] = 5.0  # never longer than five seconds
        assert (await on_two.get("/")).json()["signed_in"] is False
        assert (await on_two.get("/me")).status_code == 401
    await one.provider.aclose()
    await two.provider.aclose()


async def test_a_worker_that_had_not_seen_the_session_reads_it_ended_at_once(
    mock: MockWhop, http: httpx.AsyncClient, shared_store: Callable[[], TokenStore]
) -> None:
    one = make_env(mock, http, store=shared_store())  # type: ignore[arg-type]
    two = make_env(mock, http, store=shared_store())  # type: ignore[arg-type]
    async with one.browser() as on_one, two.browser() as on_two:
        await one.sign_in(on_one)
        replace_session_cookie(on_two, on_one.cookies["whop_session"])

        await sign_out(one, on_one)

        assert (await on_two.get("/")).json()["signed_in"] is False
        assert (await on_two.get("/me")).status_code == 401
    await one.provider.aclose()
    await two.provider.aclose()


async def test_the_window_is_five_seconds_even_with_a_longer_token_cache(
    mock: MockWhop, http: httpx.AsyncClient
) -> None:
    env = make_env(mock, http)
    env.manager = type(env.manager)(env.client, env.store, cache_ttl=60.0)
    assert env.manager.sessions._ttl == 5.0
    await env.provider.aclose()


async def test_a_token_store_without_sessions_is_refused_when_whop_auth_is_built(
    mock: MockWhop, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    class GrantsOnly:  # a custom TokenStore that keeps no sessions
        def __init__(self) -> None:
            self.inner = MemoryTokenStore()

        def __getattr__(self, name: str) -> object:
            if name in ("get", "put", "delete", "lock", "aclose"):
                return getattr(self.inner, name)
            raise AttributeError(name)

    caplog.set_level(logging.INFO)
    with pytest.raises(Exception, match="keeps no sessions"):
        make_env(mock, http, store=GrantsOnly())  # type: ignore[arg-type]


async def test_a_session_whose_grant_is_gone_ends_for_every_copy(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    async with copy_of(env, browser) as copy:
        await env.manager.sign_out(user="user_mock1")  # e.g. an admin removed the grant

        assert (await browser.get("/me")).status_code == 401  # SignInRequired
        assert (await copy.get("/")).json()["signed_in"] is False
