"""Short-lived tokens: the refresh margin follows the token's lifetime, and a worker that
gets the lock after another refreshed uses that grant instead of refreshing it again."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from app_driver import USER, expired, make_client, sign_in
from store_fixtures import StoreFactory

from whop_oauth import Token, TokenManager
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop

TTL = 10


@pytest.fixture
def short_mock() -> MockWhop:
    return MockWhop(access_token_ttl=TTL)


@pytest.fixture
async def short_http(short_mock: MockWhop) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=short_mock.transport()) as http:
        yield http


def lived(seconds: float, left: float) -> Token:
    now = time.time()
    return Token("at", expires_at=now + left, issued_at=now + left - seconds)


@pytest.mark.parametrize(
    ("lifetime", "left", "due"),
    [
        (3600, 61, False),  # an hour-long token: due inside the 60 s leeway
        (3600, 59, True),
        (10, 3, False),  # a 10 s token: due in its last quarter (2.5 s), not always
        (10, 2, True),
        (60, 16, False),
        (60, 14, True),
        (10, -1, True),
    ],
)
def test_the_margin_is_the_leeway_or_a_quarter_of_the_lifetime_whichever_is_shorter(
    lifetime: float, left: float, due: bool
) -> None:
    client = make_client("https://issuer.test", httpx.AsyncClient())
    manager = TokenManager(client, MemoryTokenStore())
    assert manager._due(lived(lifetime, left)) is due


@pytest.mark.parametrize("cache_ttl", [0.0, 5.0], ids=["no cache", "default cache"])
async def test_a_ten_second_token_is_not_refreshed_again_in_the_two_seconds_after_a_refresh(
    cache_ttl: float, short_mock: MockWhop, short_http: httpx.AsyncClient
) -> None:
    client = make_client(short_mock.issuer, short_http, max_retries=0)
    manager = TokenManager(client, MemoryTokenStore(), cache_ttl=cache_ttl)
    await manager.save(expired(await sign_in(client, short_http)), user=USER)
    first = await manager.get_token(user=USER)
    assert short_mock.stats.token_refresh == 1
    for _ in range(20):
        await asyncio.sleep(0.1)
        assert (await manager.get_token(user=USER)).access_token == first.access_token
    assert short_mock.stats.token_refresh == 1


async def test_two_workers_with_twenty_callers_each_refresh_an_expired_ten_second_token_once(
    tmp_path: Path,
    open_stores: StoreFactory,
    short_mock: MockWhop,
    short_http: httpx.AsyncClient,
) -> None:
    # Two managers on two connections to one file: two workers, minus the processes
    # (the real-process storms run the same race with more callers).
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    client = make_client(short_mock.issuer, short_http, max_retries=0)
    workers = [TokenManager(client, await open_stores(url)) for _ in range(2)]
    await workers[0].save(expired(await sign_in(client, short_http)), user=USER)
    short_mock.delay_next("token", 0.2)  # the refresh is slow: the other worker waits on the lock

    results = await asyncio.gather(
        *(worker.access_token(user=USER) for worker in workers for _ in range(20))
    )

    assert len(set(results)) == 1
    stats = short_mock.stats
    assert (stats.token_refresh, stats.refresh_reuse_detected) == (1, 0)


async def test_inside_the_lock_a_grant_changed_since_the_decision_is_used_not_refreshed(
    client: object, mock_http: httpx.AsyncClient
) -> None:
    store = MemoryTokenStore()
    manager = TokenManager(client, store)  # type: ignore[arg-type]
    grant = await sign_in(client, mock_http)  # type: ignore[arg-type]
    await manager.save(expired(grant), user=USER)
    key = manager.key(user=USER)
    seen = await store.get(key)
    assert seen is not None
    # Another worker refreshes (a brand-new, 20 s token) before this one gets the lock.
    now = time.time()
    newer = dataclasses.replace(grant, access_token="at_other", expires_at=now + 20, issued_at=now)
    await store.put(key, newer)
    token = await manager._refresh_flow(key, seen.version, rejected=None)
    assert token.access_token == "at_other"
