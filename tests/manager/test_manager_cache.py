"""TokenManager's in-process cache: API calls skip the store, refreshes never use it."""

from __future__ import annotations

import httpx
import pytest
from app_driver import USER, sign_in

from whop_oauth import NoGrantError, OAuthClient, TokenKey, TokenManager
from whop_oauth.stores import MemoryTokenStore, StoredToken
from whop_oauth.testing import MockWhop


class CountingStore(MemoryTokenStore):
    """A memory store that counts reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, key: TokenKey) -> StoredToken | None:
        self.reads += 1
        return await super().get(key)


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


async def test_repeated_calls_for_a_valid_token_read_the_store_once(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore
) -> None:
    manager = TokenManager(client, store)
    await manager.save(await sign_in(client, mock_http), user=USER)
    store.reads = 0  # save() reads the grant it replaces
    first = await manager.access_token(user=USER)
    for _ in range(50):
        assert await manager.access_token(user=USER) == first
    assert store.reads == 1


async def test_a_zero_cache_ttl_reads_the_store_every_time(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore
) -> None:
    manager = TokenManager(client, store, cache_ttl=0)
    await manager.save(await sign_in(client, mock_http), user=USER)
    store.reads = 0  # save() reads the grant it replaces
    for _ in range(5):
        await manager.access_token(user=USER)
    assert store.reads == 5


async def test_a_401_after_another_process_refreshed_uses_the_stored_token_without_refreshing(
    client: OAuthClient, mock_http: httpx.AsyncClient, mock: MockWhop, store: CountingStore
) -> None:
    this_process = TokenManager(client, store)
    other_process = TokenManager(client, store)
    await this_process.save(await sign_in(client, mock_http), user=USER)
    cached = await this_process.access_token(user=USER)
    refreshed = await other_process.refresh(user=USER)
    assert mock.stats.token_refresh == 1

    token = await this_process.refresh(user=USER, rejected_access_token=cached)

    assert token.access_token == refreshed.access_token != cached
    assert mock.stats.token_refresh == 1
    assert await this_process.access_token(user=USER) == refreshed.access_token


async def test_signing_out_forgets_the_cached_token(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore
) -> None:
    manager = TokenManager(client, store)
    await manager.save(await sign_in(client, mock_http), user=USER)
    await manager.access_token(user=USER)
    await manager.sign_out(user=USER)
    with pytest.raises(NoGrantError):
        await manager.access_token(user=USER)


async def test_a_new_sign_in_replaces_the_cached_token(
    client: OAuthClient, mock_http: httpx.AsyncClient, store: CountingStore
) -> None:
    manager = TokenManager(client, store)
    await manager.save(await sign_in(client, mock_http), user=USER)
    await manager.access_token(user=USER)
    new = await sign_in(client, mock_http)
    await manager.save(new, user=USER)
    assert await manager.access_token(user=USER) == new.access_token
