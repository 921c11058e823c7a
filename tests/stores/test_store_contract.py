"""The TokenStore contract, run against every backend (memory, SQLite, a real Redis)."""

from __future__ import annotations

import asyncio
import time

import pytest
from stores_support import BACKENDS, StoreFactory

from whop_oauth import LockTimeout, StaleWriteError, Token, TokenKey
from whop_oauth.stores import TokenStore

pytestmark = pytest.mark.parametrize("store_url", BACKENDS, indirect=True)

ISSUER = "https://api.whop.com"


def key(user: str = "user_1", tenant: str = "biz_1", client_id: str = "app_1") -> TokenKey:
    return TokenKey(tenant, user, ISSUER, client_id)


def token(access: str = "at-1", refresh: str | None = "rt-1") -> Token:
    return Token(access_token=access, refresh_token=refresh, expires_at=time.time() + 3600)


async def other_handle(store: TokenStore, store_url: str, open_stores: StoreFactory) -> TokenStore:
    """A second connection to the same storage (another process would have one)."""
    return store if store_url == "memory://" else await open_stores(store_url)


async def test_a_missing_grant_reads_as_none(store: TokenStore) -> None:
    assert await store.get(key()) is None


async def test_a_stored_token_reads_back_equal_with_its_version(store: TokenStore) -> None:
    original = Token(
        access_token="at-1",
        refresh_token="rt-1",
        expires_at=time.time() + 3600,
        scopes=("openid", "email"),
        id_token="id.token.value",
        id_token_claims={"sub": "user_1"},
        company_id="biz_1",
    )
    written = await store.put(key(), original)
    read = await store.get(key())
    assert read is not None
    assert read.token == original
    assert read.version == written.version > 0


async def test_every_put_increases_the_version(store: TokenStore) -> None:
    first = await store.put(key(), token("a"))
    second = await store.put(key(), token("b"))
    third = await store.put(key(), token("c"), expected_version=second.version)
    assert first.version < second.version < third.version


async def test_delete_removes_the_grant_and_reports_whether_there_was_one(
    store: TokenStore,
) -> None:
    await store.put(key(), token())
    assert await store.delete(key()) is True
    assert await store.get(key()) is None
    assert await store.delete(key()) is False


async def test_expected_version_zero_creates_only_when_nothing_is_stored(
    store: TokenStore,
) -> None:
    created = await store.put(key(), token("first"), expected_version=0)
    with pytest.raises(StaleWriteError):
        await store.put(key(), token("second"), expected_version=0)
    read = await store.get(key())
    assert read is not None
    assert (read.token.access_token, read.version) == ("first", created.version)


async def test_a_write_expecting_an_old_version_fails_and_changes_nothing(
    store: TokenStore,
) -> None:
    old = await store.put(key(), token("old"))
    await store.put(key(), token("newer"))
    with pytest.raises(StaleWriteError):
        await store.put(key(), token("stale"), expected_version=old.version)
    with pytest.raises(StaleWriteError):
        await store.delete(key(), expected_version=old.version)
    read = await store.get(key())
    assert read is not None
    assert read.token.access_token == "newer"


async def test_a_grant_deleted_and_created_again_never_reuses_a_version(
    store: TokenStore,
) -> None:
    old = await store.put(key(), token("old"))
    await store.delete(key())
    await store.put(key(), token("new"))
    with pytest.raises(StaleWriteError):
        await store.put(key(), token("from a slow writer"), expected_version=old.version)


async def test_tenants_users_and_clients_never_share_a_grant(store: TokenStore) -> None:
    keys = [
        key("user_1", "biz_1"),
        key("user_1", "biz_2"),
        key("user_2", "biz_1"),
        key("user_1", "biz_1", client_id="app_2"),
        TokenKey("biz_1", "user_1", "https://sandbox-api.whop.com", "app_1"),
        # Separators inside ids must not make two keys collide.
        key("c", "a:b"),
        key("b:c", "a"),
        key("user_1", "biz_1:user_1"),
    ]
    for index, k in enumerate(keys):
        await store.put(k, token(f"at-{index}"))
    for index, k in enumerate(keys):
        read = await store.get(k)
        assert read is not None
        assert read.token.access_token == f"at-{index}"
    await store.delete(keys[0])
    assert [await store.get(k) is None for k in keys] == [True] + [False] * (len(keys) - 1)


async def test_a_tenants_grants_are_listed_sorted_and_no_other_tenants(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    listed = [key("user_1", "biz_1"), key("user_1", "biz_1", client_id="app_2"), key("user_2")]
    others = [key("user_1", "biz_2"), key("user_1", "biz_1:user_1"), key("user_1", "biz_*")]
    for k in [*reversed(listed), *others, key("c", "a:b")]:
        await store.put(k, token())
    handle = await other_handle(store, store_url, open_stores)

    assert await handle.grant_keys("biz_1") == listed  # type: ignore[attr-defined]
    assert await handle.grant_keys("a:b") == [key("c", "a:b")]  # type: ignore[attr-defined]
    assert await handle.grant_keys("biz_*") == [key("user_1", "biz_*")]  # type: ignore[attr-defined]
    assert await handle.grant_keys("biz_3") == []  # type: ignore[attr-defined]
    await store.delete(listed[0])
    assert await handle.grant_keys("biz_1") == listed[1:]  # type: ignore[attr-defined]


async def test_the_lock_admits_one_holder_at_a_time_across_handles(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    other = await other_handle(store, store_url, open_stores)
    inside = 0
    most_inside = 0
    entered = 0

    async def hold(handle: TokenStore) -> None:
        nonlocal inside, most_inside, entered
        async with handle.lock(key(), lease=5, timeout=10):
            inside += 1
            entered += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(hold(h) for h in [store, other] * 4))
    assert (entered, most_inside) == (8, 1)


async def test_locks_on_different_keys_do_not_block_each_other(store: TokenStore) -> None:
    async with (
        store.lock(key("user_1"), lease=5, timeout=5),
        store.lock(key("user_2"), lease=5, timeout=0.2),
    ):
        pass


async def test_waiting_past_the_timeout_raises_lock_timeout(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    other = await other_handle(store, store_url, open_stores)
    async with store.lock(key(), lease=5, timeout=1):
        started = time.monotonic()
        with pytest.raises(LockTimeout):
            async with other.lock(key(), lease=5, timeout=0.2):
                pass
        assert time.monotonic() - started >= 0.2


async def test_a_lease_whose_holder_died_is_taken_once_it_runs_out(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    other = await other_handle(store, store_url, open_stores)
    # A holder that took the lease and then vanished: nobody renews or releases it.
    assert await store.acquire_lease(key(), "dead-holder", 0.4)  # type: ignore[attr-defined]
    started = time.monotonic()
    async with other.lock(key(), lease=5, timeout=5):
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2.0


async def test_a_held_lease_is_renewed_beyond_its_length(
    store: TokenStore, store_url: str, open_stores: StoreFactory
) -> None:
    other = await other_handle(store, store_url, open_stores)
    async with store.lock(key(), lease=0.5, timeout=1):
        with pytest.raises(LockTimeout):
            async with other.lock(key(), lease=0.5, timeout=1.2):
                pass


async def test_release_by_a_holder_that_lost_its_lease_does_not_free_the_new_holder(
    store: TokenStore,
) -> None:
    assert await store.acquire_lease(key(), "old-holder", 0.05)  # type: ignore[attr-defined]
    await asyncio.sleep(0.1)  # let the first lease run out, as a stalled holder's would
    assert await store.acquire_lease(key(), "new-holder", 5)  # type: ignore[attr-defined]
    assert await store.release_lease(key(), "old-holder") is False  # type: ignore[attr-defined]
    assert await store.acquire_lease(key(), "third", 5) == 0  # type: ignore[attr-defined]
    assert await store.release_lease(key(), "new-holder") is True  # type: ignore[attr-defined]
