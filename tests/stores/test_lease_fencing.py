"""A lock holder that lost its lease finds out before it acts, and cannot write after."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from stores_support import BACKENDS

from whop_oauth import ConfigurationError, LockLost, LockTimeout, StaleWriteError, Token, TokenKey
from whop_oauth.stores import Lease, TokenStore

pytestmark = pytest.mark.parametrize("store_url", BACKENDS, indirect=True)


def key(user: str = "user_1") -> TokenKey:
    return TokenKey("biz_1", user, "https://issuer.test", "app_1")


async def stall(lease: Lease, seconds: float) -> None:
    """What a frozen process does: nothing, its renewals included, for ``seconds``."""
    renewer = lease._renewer  # type: ignore[attr-defined]
    renewer.cancel()
    await asyncio.gather(renewer, return_exceptions=True)
    await asyncio.sleep(seconds)


async def test_the_lock_yields_a_lease_with_a_generation_that_grows(store: TokenStore) -> None:
    async with store.lock(key(), lease=5, timeout=1) as first:
        assert isinstance(first, Lease)
    async with store.lock(key(), lease=5, timeout=1) as second:
        pass
    assert first.generation > 0
    assert second.generation > first.generation


async def test_reserve_renews_a_lease_still_held(store: TokenStore) -> None:
    async with store.lock(key(), lease=0.6, timeout=1) as lease:
        await asyncio.sleep(0.4)
        await lease.reserve(0.5)  # renewed: 0.6 s from now, more than the 0.5 asked for
        async with asyncio.timeout(2):
            with pytest.raises(LockTimeout):
                async with store.lock(key(), lease=5, timeout=0.3):
                    pass


async def test_a_holder_whose_lease_was_taken_over_cannot_reserve(store: TokenStore) -> None:
    async with store.lock(key(), lease=0.2, timeout=1) as stalled:
        await stall(stalled, 0.3)
        async with store.lock(key(), lease=5, timeout=1):
            pass  # another worker took the key, worked, and released it
        with pytest.raises(LockLost):
            await stalled.reserve(0.1)


async def test_a_holder_whose_lease_is_held_by_another_cannot_reserve(store: TokenStore) -> None:
    async with store.lock(key(), lease=0.2, timeout=1) as stalled:
        await stall(stalled, 0.3)
        async with store.lock(key(), lease=5, timeout=1):
            with pytest.raises(LockLost):
                await stalled.reserve(0.1)


async def test_reserve_refuses_a_deadline_the_lease_cannot_cover(store: TokenStore) -> None:
    async with store.lock(key(), lease=1, timeout=1) as lease:
        with pytest.raises(ConfigurationError, match="cannot cover"):
            await lease.reserve(1.5)


async def test_a_write_fenced_by_an_older_generation_is_refused(store: TokenStore) -> None:
    stored = await store.put(key(), Token("at_0", refresh_token="rt_0"))
    async with store.lock(key(), lease=0.2, timeout=1) as stalled:
        await stall(stalled, 0.3)
        async with store.lock(key(), lease=5, timeout=1) as newer:
            with pytest.raises(StaleWriteError, match="fenced"):
                await store.put(
                    key(),
                    Token("at_old"),
                    expected_version=stored.version,
                    fence=stalled.generation,
                )
            written = await store.put(
                key(), Token("at_new"), expected_version=stored.version, fence=newer.generation
            )
    current = await store.get(key())
    assert current is not None
    assert (current.version, current.token.access_token) == (written.version, "at_new")


async def test_a_fenced_write_by_the_current_holder_goes_through(store: TokenStore) -> None:
    async with store.lock(key(), lease=5, timeout=1) as lease:
        await store.put(key(), Token("at_1"), fence=lease.generation)
    current = await store.get(key())
    assert current is not None
    assert current.token.access_token == "at_1"


async def test_a_release_by_the_new_holder_does_not_revive_the_old_lease(
    store: TokenStore,
) -> None:
    assert await store.acquire_lease(key(), "old", 0.1)  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    assert await store.acquire_lease(key(), "new", 5)  # type: ignore[attr-defined]
    assert await store.release_lease(key(), "new")  # type: ignore[attr-defined]
    assert await store.renew_lease(key(), "old", 5) is False  # type: ignore[attr-defined]



async def test_fencing_outlives_cleanup_of_released_leases(store: TokenStore) -> None:
    stored = await store.put(key(), Token("at_0", refresh_token="rt_0"))
    async with store.lock(key(), lease=0.2, timeout=1) as stalled:
        await stall(stalled, 0.3)
        async with store.lock(key(), lease=5, timeout=1):
            pass  # a newer holder came and went
        cleanup = getattr(store, "cleanup", None)  # Redis needs none: keys carry TTLs
        swept = cleanup() if cleanup is not None else None
        if inspect.isawaitable(swept):
            await swept
        with pytest.raises(StaleWriteError, match="fenced"):
            await store.put(
                key(), Token("at_old"), expected_version=stored.version, fence=stalled.generation
            )
