"""LeaseLock itself: how ``reserve`` judges the time left, when renewals stop, and the
limits it refuses."""

from __future__ import annotations

import asyncio

import pytest

from whop_oauth import ConfigurationError, LockLost, LockTimeout, TokenKey
from whop_oauth.stores import LeaseLock, MemoryTokenStore
from whop_oauth.stores._lease import next_generation


def key() -> TokenKey:
    return TokenKey("biz_1", "user_1", "https://issuer.test", "app_1")


class SlowRenewals:
    """A lease backend (memory) whose renewals take ``delay`` and are counted."""

    def __init__(self, delay: float = 0.0) -> None:
        self.inner = MemoryTokenStore()
        self.delay = delay
        self.renewals = 0

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int:
        return await self.inner.acquire_lease(key, holder, lease)

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        self.renewals += 1
        await asyncio.sleep(self.delay)
        return await self.inner.renew_lease(key, holder, lease)

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        return await self.inner.release_lease(key, holder)


async def test_reserve_refuses_when_the_renewal_left_too_little_time() -> None:
    backend = SlowRenewals(delay=0.3)  # a renewal that takes most of the lease
    async with LeaseLock(backend, key(), lease=0.5, timeout=1) as lease:
        with pytest.raises(LockLost, match="too little time"):
            await lease.reserve(0.3)


async def test_after_reserve_renewals_stop_at_the_reserved_deadline() -> None:
    backend = SlowRenewals()
    async with LeaseLock(backend, key(), lease=0.3, timeout=1) as lease:
        await lease.reserve(0.1)
        await asyncio.sleep(0.25)  # past the deadline and the renewal due around it
        counted = backend.renewals
        await asyncio.sleep(0.4)  # four renewal periods
        assert backend.renewals == counted  # none: the lease runs out on its own
    async with LeaseLock(backend, key(), lease=0.3, timeout=1):
        before = backend.renewals
        await asyncio.sleep(0.35)  # without reserve the lease is kept alive
        assert backend.renewals > before


@pytest.mark.parametrize(("lease", "timeout"), [(0, 1), (-1, 1), (1, -0.1)])
def test_a_lease_lock_refuses_a_non_positive_lease_or_negative_timeout(
    lease: float, timeout: float
) -> None:
    with pytest.raises(ConfigurationError, match="lease must be > 0"):
        LeaseLock(SlowRenewals(), key(), lease=lease, timeout=timeout)


async def test_a_zero_timeout_takes_a_free_lock_and_fails_at_once_on_a_held_one() -> None:
    store = MemoryTokenStore()
    async with store.lock(key(), lease=5, timeout=0) as lease:
        assert lease.generation > 0
        with pytest.raises(LockTimeout):
            async with store.lock(key(), lease=5, timeout=0):
                pass


def test_a_generation_is_above_both_the_previous_one_and_the_clock_in_microseconds() -> None:
    assert next_generation(5, now=2.0) == 2_000_000  # the clock wins after a cleanup
    assert next_generation(10**18, now=2.0) == 10**18 + 1  # a newer holder always grows


async def test_leaving_the_lock_stops_its_renewals() -> None:
    backend = SlowRenewals()
    async with LeaseLock(backend, key(), lease=0.15, timeout=1):
        pass
    counted = backend.renewals
    await asyncio.sleep(0.2)
    assert backend.renewals == counted
