"""A sign-in flow is used once, server-side: a replayed callback exchanges nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette_support import Env, make_env

from whop_oauth.stores import TokenStore
from whop_oauth.testing import MockWhop

REPLAYS = 50


async def captured_callback(env: Env) -> tuple[str, str]:
    """A script's loot: one callback URL and the ``Cookie`` header its browser sent."""
    async with env.browser() as browser:
        callback = await env.authorize(await browser.get("/auth/login"))
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    return callback, cookie


async def replay(env: Env, callback: str, cookie: str) -> httpx.Response:
    async with env.browser() as script:
        return await script.get(callback, headers={"Cookie": cookie})


async def test_the_same_callback_replayed_fifty_times_exchanges_one_code(env: Env) -> None:
    callback, cookie = await captured_callback(env)
    before = env.mock.stats.token_requests

    answers = [await replay(env, callback, cookie) for _ in range(REPLAYS)]

    assert env.mock.stats.token_requests == before + 1
    assert answers[0].status_code == 303
    for answer in answers[1:]:
        assert answer.status_code == 400
        assert "Sign-in link expired" in answer.text
        sessions = [h for h in answer.headers.get_list("set-cookie") if "whop_session=" in h]
        assert sessions == []  # nobody signed in by a replay


async def test_replays_at_once_on_two_workers_exchange_one_code(
    mock: MockWhop, http: httpx.AsyncClient, shared_store: Callable[[], TokenStore]
) -> None:
    workers = [make_env(mock, http, store=shared_store()) for _ in range(2)]  # type: ignore[arg-type]
    callback, cookie = await captured_callback(workers[0])
    before = mock.stats.token_requests

    answers = await asyncio.gather(
        *(replay(workers[n % 2], callback, cookie) for n in range(REPLAYS))
    )

    assert mock.stats.token_requests == before + 1
    assert sorted(a.status_code for a in answers) == [303] + [400] * (REPLAYS - 1)


async def test_a_callback_that_failed_cannot_be_replayed_either(env: Env) -> None:
    callback, cookie = await captured_callback(env)
    env.mock.fail_next("token", 503)
    assert (await replay(env, callback, cookie)).status_code == 502  # the provider failed
    before = env.mock.stats.token_requests

    assert (await replay(env, callback, cookie)).status_code == 400
    assert env.mock.stats.token_requests == before
