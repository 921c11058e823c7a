"""LeaseLock's protections, each observed from outside: the prompt wake-up on release, the
poll backoff, a cancelled waiter's lease given back, renewals that survive a store blip,
the operator's log lines (without the holder id), and the limits it refuses."""

from __future__ import annotations

import asyncio
import logging
import time
import types

import pytest

from whop_oauth import ConfigurationError, LockLost, LockTimeout, TokenKey
from whop_oauth.stores import LeaseLock, MemoryTokenStore, _lease
from whop_oauth.stores._lease import ReleaseSignals, next_generation


def key(user: str = "user_1") -> TokenKey:
    return TokenKey("biz_1", user, "https://issuer.test", "app_1")


class Recording:
    """A memory lease backend that counts calls, remembers holders, and can be slowed or broken."""

    def __init__(self) -> None:
        self.inner = MemoryTokenStore()
        self.acquires = 0
        self.renewals = 0
        self.released: list[str] = []
        self.holders: list[str] = []
        self.acquire_delay = 0.0
        self.acquire_error: Exception | None = None
        self.renew_errors: list[Exception] = []
        self.renew_delay = 0.0
        self.release_error: Exception | None = None

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int:
        self.acquires += 1
        self.holders.append(holder)
        await asyncio.sleep(self.acquire_delay)
        if self.acquire_error is not None:
            raise self.acquire_error
        return await self.inner.acquire_lease(key, holder, lease)

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        self.renewals += 1
        await asyncio.sleep(self.renew_delay)
        if self.renew_errors:
            raise self.renew_errors.pop(0)
        return await self.inner.renew_lease(key, holder, lease)

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        self.released.append(holder)
        if self.release_error is not None:
            raise self.release_error
        return await self.inner.release_lease(key, holder)


async def held_for(store: MemoryTokenStore, seconds: float, taken: asyncio.Event) -> None:
    async with store.lock(key(), lease=5, timeout=1):
        taken.set()
        await asyncio.sleep(seconds)


# --- waking and polling -------------------------------------------------------------------


async def test_a_waiter_in_this_process_wakes_as_soon_as_the_lock_is_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Polls of a full second: only the release signal can hand the lock over sooner.
    monkeypatch.setattr(_lease, "_FIRST_POLL", 1.0)
    monkeypatch.setattr(_lease, "_MAX_POLL", 1.0)
    store = MemoryTokenStore()
    async with asyncio.timeout(3):
        taken = asyncio.Event()
        holder = asyncio.create_task(held_for(store, 0.2, taken))
        await taken.wait()
        started = time.monotonic()
        async with store.lock(key(), lease=5, timeout=5):
            elapsed = time.monotonic() - started
        await holder
    assert 0.15 <= elapsed < 0.6, elapsed  # released at 0.2 s; the next poll was at 1 s


async def test_every_waiter_on_the_key_wakes_and_other_keys_sleep_on() -> None:
    signals = ReleaseSignals()
    woken: list[str] = []

    async def wait(name: str, on: TokenKey) -> None:
        await signals.wait(on, 2.0)
        woken.append(name)

    async with asyncio.timeout(3):
        tasks = [
            asyncio.create_task(wait("a", key())),
            asyncio.create_task(wait("b", key())),
            asyncio.create_task(wait("other", key("user_2"))),
        ]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        signals.notify(key())
        signals.notify(key())  # twice before either wakes: resolved once, no error
        await asyncio.sleep(0.1)
        assert sorted(woken) == ["a", "b"]
        assert time.monotonic() - started < 0.5
        signals.notify(key("user_3"))  # nobody waits on it: nothing happens
        signals.notify(key("user_2"))
        await asyncio.gather(*tasks)
    assert sorted(woken) == ["a", "b", "other"]
    assert signals._waiters == {}  # no per-key set is left behind


async def test_a_signal_wait_ends_after_its_pause_without_a_release() -> None:
    signals = ReleaseSignals()
    started = time.monotonic()
    async with asyncio.timeout(2):
        await signals.wait(key(), 0.1)
    assert 0.08 <= time.monotonic() - started < 1.0
    assert signals._waiters == {}


async def test_two_notifies_before_the_waiter_runs_log_no_callback_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signals = ReleaseSignals()
    waiter = asyncio.create_task(signals.wait(key(), 2.0))
    await asyncio.sleep(0.02)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        signals.notify(key())
        signals.notify(key())
        async with asyncio.timeout(1):
            await waiter
        await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_waiter_in_another_process_polls_with_a_capped_backoff() -> None:
    backend = Recording()  # no signals: the waiter polls, as one in another process does
    async with LeaseLock(backend, key(), lease=5, timeout=1):
        backend.acquires = 0
        started = time.monotonic()
        with pytest.raises(LockTimeout):
            async with asyncio.timeout(3), LeaseLock(backend, key(), lease=5, timeout=1.0):
                pass
        elapsed = time.monotonic() - started
    # First poll after 5 ms, growing by 1.6 up to 50 ms: about 24 tries in a second.
    assert 0.95 <= elapsed < 1.5
    assert 12 <= backend.acquires <= 30, backend.acquires


async def test_a_polling_waiter_gets_the_lock_within_a_poll_of_its_release() -> None:
    backend = Recording()
    taken = asyncio.Event()

    async def hold() -> None:
        async with LeaseLock(backend, key(), lease=5, timeout=1):
            taken.set()
            await asyncio.sleep(0.3)

    holder = asyncio.create_task(hold())
    await taken.wait()
    started = time.monotonic()
    async with asyncio.timeout(3), LeaseLock(backend, key(), lease=5, timeout=2):
        elapsed = time.monotonic() - started
    await holder
    assert 0.25 <= elapsed < 0.45, elapsed  # released at 0.3 s; polls are 50 ms apart


async def test_the_timeout_message_says_how_long_it_waited() -> None:
    store = MemoryTokenStore()
    async with store.lock(key(), lease=5, timeout=0):
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            async with asyncio.timeout(3), store.lock(key(), lease=5, timeout=0.25):
                pass
    assert 0.2 <= time.monotonic() - started < 1.0
    assert str(caught.value) == ("the refresh lock was held by another worker for over 0.25 s")


async def test_a_zero_timeout_gives_up_after_one_try_even_on_a_clock_that_stands_still(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = Recording()
    async with LeaseLock(backend, key(), lease=5, timeout=0):
        backend.acquires = 0
        monkeypatch.setattr(_lease, "time", types.SimpleNamespace(monotonic=lambda: 500.0))
        with pytest.raises(LockTimeout):
            async with asyncio.timeout(1), LeaseLock(backend, key(), lease=5, timeout=0):
                pass
        monkeypatch.undo()
    assert backend.acquires == 1


async def test_store_lock_defaults_to_a_30_s_lease_and_a_60_s_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryTokenStore()
    async with store.lock(key()) as lease:
        await lease.reserve(29.5)
        with pytest.raises(ConfigurationError, match="a lease of 30 s cannot"):
            await lease.reserve(30)
        # A clock that jumps 7 s at each try: the waiter gives up once 60 s have passed.
        clock = [1000.0]

        def monotonic() -> float:
            clock[0] += 7.0
            return clock[0]

        monkeypatch.setattr(_lease, "time", types.SimpleNamespace(monotonic=monotonic))
        async with asyncio.timeout(2):
            with pytest.raises(LockTimeout, match="for over 60 s"):
                async with store.lock(key()):
                    pass
        monkeypatch.undo()


# --- a cancelled waiter ------------------------------------------------------------------


async def test_a_waiter_cancelled_while_acquiring_gives_the_lease_back() -> None:
    backend = Recording()
    backend.acquire_delay = 0.1  # the store answers after the waiter was cancelled
    waiter = asyncio.create_task(LeaseLock(backend, key(), lease=30, timeout=1).__aenter__())
    await asyncio.sleep(0.03)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.15)  # the shielded acquire completes, then the release runs
    assert backend.released == backend.holders  # the acquired lease, by its own holder
    assert _lease._background == set()  # the release task is not kept once done
    backend.acquire_delay = 0.0
    started = time.monotonic()
    async with LeaseLock(backend, key(), lease=30, timeout=0.5):
        pass
    assert time.monotonic() - started < 0.2  # the next holder did not wait for 30 s


async def test_a_cancelled_waiter_that_got_nothing_releases_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Recording()
    async with LeaseLock(backend, key(), lease=30, timeout=0):
        backend.acquire_delay = 0.1
        waiter = asyncio.create_task(LeaseLock(backend, key(), lease=30, timeout=1).__aenter__())
        await asyncio.sleep(0.03)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.sleep(0.15)
        assert backend.released == []  # the lock was held by another: nothing to give back
        backend.renewals = 0
    # A failing acquire: nothing to release, and no error from a callback.
    backend.acquire_error = ConnectionError("store down")
    with caplog.at_level(logging.DEBUG):
        waiter = asyncio.create_task(LeaseLock(backend, key(), lease=30, timeout=1).__aenter__())
        await asyncio.sleep(0.03)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.sleep(0.15)
    assert backend.released == [backend.holders[0]]  # only the first holder's own exit
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- renewals --------------------------------------------------------------------------


async def test_renewals_run_every_third_of_the_lease_and_keep_the_lock() -> None:
    backend = Recording()
    async with LeaseLock(backend, key(), lease=0.3, timeout=1):
        await asyncio.sleep(0.55)
        assert 3 <= backend.renewals <= 6, backend.renewals  # about every 0.1 s
        with pytest.raises(LockTimeout):
            async with LeaseLock(backend, key(), lease=5, timeout=0):
                pass  # past its first lease, still held


async def test_a_renewal_error_is_logged_and_renewals_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Recording()
    backend.renew_errors = [ConnectionError("redis://:hunter2@host down")]
    with caplog.at_level(logging.WARNING, logger="whop_oauth.stores"):
        async with LeaseLock(backend, key(), lease=0.3, timeout=1) as lease:
            await asyncio.sleep(0.35)
            assert backend.renewals >= 2  # the failed one, then more
            await lease.reserve(0.1)  # still ours
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.WARNING, "could not renew a refresh lock: ConnectionError") in lines
    assert not any("hunter2" in text or backend.holders[0] in text for _, text in lines)


async def test_a_lost_lease_is_logged_once_and_renewals_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Recording()
    with caplog.at_level(logging.WARNING, logger="whop_oauth.stores"):
        async with LeaseLock(backend, key(), lease=0.15, timeout=1) as lease:
            await backend.inner.release_lease(key(), backend.holders[0])  # taken from it
            await asyncio.sleep(0.3)
            assert backend.renewals == 1  # the first renewal found it gone: no more
            with pytest.raises(LockLost) as caught:
                await lease.reserve(0.05)
            assert str(caught.value) == "the refresh lock was lost while its holder was working"
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.WARNING, "a refresh lock expired while its holder was still working") in lines
    assert not any(backend.holders[0] in text for _, text in lines)


async def test_reserve_with_hold_keeps_renewing_until_the_hold_ends() -> None:
    backend = Recording()
    async with LeaseLock(backend, key(), lease=0.3, timeout=1) as lease:
        await lease.reserve(0.05, hold=0.45)
        await asyncio.sleep(0.35)
        assert backend.renewals >= 3  # the reserve's own, then every 0.1 s past 0.05 s
        await asyncio.sleep(0.35)
        counted = backend.renewals
        await asyncio.sleep(0.3)
        assert backend.renewals == counted  # stopped once the hold ended
    async with LeaseLock(backend, key(), lease=0.3, timeout=1) as lease:
        backend.renewals = 0
        await lease.reserve(0.25, hold=0.01)  # a hold shorter than the deadline: the deadline
        await asyncio.sleep(0.22)
        assert backend.renewals >= 2


async def test_reserve_refuses_a_deadline_equal_to_the_lease() -> None:
    async with LeaseLock(Recording(), key(), lease=0.5, timeout=1) as lease:
        with pytest.raises(ConfigurationError) as caught:
            await lease.reserve(0.5)
    assert str(caught.value) == "a lease of 0.5 s cannot cover a 0.5 s deadline"


async def test_reserve_refuses_when_the_renewal_took_most_of_the_lease() -> None:
    backend = Recording()
    backend.renew_delay = 0.3
    async with LeaseLock(backend, key(), lease=0.5, timeout=1) as lease:
        with pytest.raises(LockLost) as caught:
            await lease.reserve(0.3)  # 0.5 s from when it was asked: 0.2 s left
        await lease.reserve(0.1)  # what is left covers this one
    assert str(caught.value) == "the refresh lock has too little time left for the request"


async def test_reserve_grants_a_deadline_just_under_the_lease() -> None:
    async with LeaseLock(Recording(), key(), lease=1.0, timeout=1) as lease:
        await lease.reserve(0.9)


# --- release ---------------------------------------------------------------------------


async def test_a_failed_release_is_logged_and_does_not_mask_the_body_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Recording()
    backend.release_error = ConnectionError("postgres://app:s3cret@db down")
    with caplog.at_level(logging.WARNING, logger="whop_oauth.stores"):
        with pytest.raises(KeyError, match="body"):
            async with LeaseLock(backend, key(), lease=5, timeout=1):
                raise KeyError("body")
        async with LeaseLock(backend, key("user_2"), lease=5, timeout=1):
            pass  # and without a body error, leaving does not raise either
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines.count((logging.WARNING, "could not release a refresh lock: ConnectionError")) == 2
    assert not any("s3cret" in text for _, text in lines)
    assert len(backend.released) == 2


async def test_a_lock_released_by_its_holder_is_free_at_once() -> None:
    backend = Recording()
    async with LeaseLock(backend, key(), lease=30, timeout=1):
        pass
    assert backend.released == backend.holders  # released by the holder that acquired it
    async with LeaseLock(backend, key(), lease=30, timeout=0):
        pass


def test_each_lock_has_its_own_unguessable_holder_and_a_repr_without_it() -> None:
    first = LeaseLock(Recording(), key(), lease=1, timeout=1)
    second = LeaseLock(Recording(), key(), lease=1, timeout=1)
    assert first._holder != second._holder
    assert len(first._holder) >= 24  # 18 random bytes, URL-safe base64
    assert first._holder not in repr(first)
    assert "generation=0" in repr(first)


def test_a_new_generation_follows_the_clock_in_whole_microseconds() -> None:
    before = time.time_ns() // 1000
    generation = next_generation(0)
    after = time.time_ns() // 1000
    assert type(generation) is int
    assert before <= generation <= after
    assert next_generation(10**18) == 10**18 + 1


async def test_leaving_the_lock_leaves_no_task_behind() -> None:
    backend = Recording()
    before = asyncio.all_tasks()
    async with LeaseLock(backend, key(), lease=0.3, timeout=1):
        assert len(asyncio.all_tasks() - before) == 1  # the renewer
    assert asyncio.all_tasks() - before == set()  # stopped and awaited, not just asked to stop


@pytest.mark.parametrize(("lease", "timeout"), [(0, 1), (1, -0.5)])
def test_an_unusable_lease_or_timeout_is_refused_with_its_rule(
    lease: float, timeout: float
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LeaseLock(Recording(), key(), lease=lease, timeout=timeout)
    assert str(caught.value) == "lock lease must be > 0 and timeout >= 0 seconds"
