"""A fenced lease lock built on three store primitives: acquire, renew, release.

A lease can be lost while its holder is stalled (GC pause, SIGSTOP, VM freeze): the
holder wakes up believing it still holds the lock. So holding the lock proves
nothing by itself. Before a side effect that must happen once (presenting a refresh
token), the holder calls ``Lease.reserve(seconds)``: the lease is renewed *now*, and
the call fails unless it is still ours with at least ``seconds`` left. Every
acquisition also gets a *generation* (a fencing token) that increases with each
new holder; a store write carrying an older generation than the newest one issued
for its key is refused.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol, runtime_checkable

from .._errors import ConfigurationError, LockLost, LockTimeout
from .._token import TokenKey

__all__ = ["Lease", "LeaseBackend", "LeaseLock", "LeaseLocking", "ReleaseSignals"]

logger = logging.getLogger("whop_oauth.stores")

_FIRST_POLL = 0.005
_MAX_POLL = 0.05


@runtime_checkable
class Lease(Protocol):
    """What ``store.lock()`` yields: proof, on demand, that the lock is still held.

    ```python
    async with store.lock(key, lease=30, timeout=60) as lease:
        stored = await store.get(key)
        await lease.reserve(20)   # renewed now; raises LockLost if taken over
        fresh = await refresh(stored.token)   # must finish within the 20 s
        await store.put(key, fresh, expected_version=stored.version, fence=lease.generation)
    ```
    """

    @property
    def generation(self) -> int:
        """The fencing token of this acquisition: larger than any earlier holder's."""
        ...

    async def reserve(self, seconds: float, *, hold: float | None = None) -> None:
        """Renew now; raise ``LockLost`` unless the lease is ours for ``seconds`` more.

        Renewals then go on for ``hold`` seconds (default ``seconds``), no longer.
        """
        ...


class LeaseBackend(Protocol):
    """What a store provides so that ``LeaseLock`` can coordinate processes.

    ``holder`` is a random string unique to one acquisition. ``acquire_lease``
    returns the acquisition's generation (a positive integer, larger than every
    generation issued before for ``key``) or ``0`` when someone else holds the key.
    ``renew_lease`` extends the lease only while it still belongs to ``holder`` (a
    lapsed lease is never taken back: someone may have held it meanwhile), and
    ``release_lease`` ends it only for ``holder``.
    """

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int: ...

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool: ...

    async def release_lease(self, key: TokenKey, holder: str) -> bool: ...


class ReleaseSignals:
    """Wakes waiters in this process as soon as a lease on their key is released.

    Waiters in other processes poll with backoff instead.
    """

    def __init__(self) -> None:
        self._waiters: dict[TokenKey, set[asyncio.Future[None]]] = {}

    async def wait(self, key: TokenKey, pause: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, set())
        waiters.add(future)
        try:
            await asyncio.wait((future,), timeout=pause)
        finally:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(key, None)

    def notify(self, key: TokenKey) -> None:
        for future in self._waiters.get(key, ()):
            if not future.done():
                future.get_loop().call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LeaseLock:
    """``async with`` a lease on one key: wait for it, renew it while held, release it.

    Renewal runs every third of the lease while the body works, so a slow body
    keeps the lock and a killed process loses it once its lease runs out. After
    ``reserve(seconds)``, renewals stop ``seconds`` later: a body that overruns its
    own deadline does not keep everyone else waiting.
    """

    def __init__(
        self,
        backend: LeaseBackend,
        key: TokenKey,
        *,
        lease: float,
        timeout: float,
        signals: ReleaseSignals | None = None,
    ) -> None:
        if lease <= 0 or timeout < 0:
            raise ConfigurationError("lock lease must be > 0 and timeout >= 0 seconds")
        self._backend = backend
        self._key = key
        self._lease = lease
        self._timeout = timeout
        self._signals = signals
        self._holder = secrets.token_urlsafe(18)
        self._renewer: asyncio.Task[None] | None = None
        self._generation = 0
        self._valid_until = 0.0  # monotonic; a lower bound on when the lease runs out
        self._renew_until: float | None = None
        self.lost = False  #: True once a renewal found the lease no longer ours

    @property
    def generation(self) -> int:
        return self._generation

    def __repr__(self) -> str:
        return f"<LeaseLock generation={self._generation} lost={self.lost}>"

    async def __aenter__(self) -> LeaseLock:
        deadline = time.monotonic() + self._timeout
        poll = _FIRST_POLL
        while True:
            asked_at = time.monotonic()
            generation = await self._try_acquire()
            if generation:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(
                    f"the refresh lock was held by another worker for over {self._timeout:g} s"
                )
            pause = min(poll, remaining)
            if self._signals is not None:
                await self._signals.wait(self._key, pause)
            else:
                await asyncio.sleep(pause)
            poll = min(poll * 1.6, _MAX_POLL)
        self._generation = int(generation)
        self._valid_until = asked_at + self._lease
        self._renewer = asyncio.create_task(self._renew_forever())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        try:
            await self._backend.release_lease(self._key, self._holder)
        except Exception as error:  # the lease expires anyway; do not mask the body's error
            logger.warning("could not release a refresh lock: %s", type(error).__name__)
        if self._signals is not None:
            self._signals.notify(self._key)

    async def reserve(self, seconds: float, *, hold: float | None = None) -> None:
        """Renew the lease now and make sure it stays ours for ``seconds`` more.

        Raises ``LockLost`` when the lease was taken over (or lapsed) since it was
        acquired, or when what is left of it after renewing is shorter than
        ``seconds``. From then on renewals stop ``hold`` seconds from now (default
        ``seconds``): a body that overruns its deadline lets the lease run out.
        """
        if seconds >= self._lease:
            raise ConfigurationError(
                f"a lease of {self._lease:g} s cannot cover a {seconds:g} s deadline"
            )
        if self.lost or not await self._renew():
            raise LockLost("the refresh lock was lost while its holder was working")
        now = time.monotonic()
        if self._valid_until - now <= seconds:
            raise LockLost("the refresh lock has too little time left for the request")
        self._renew_until = now + (seconds if hold is None else max(hold, seconds))

    async def _renew(self) -> bool:
        asked_at = time.monotonic()
        if not await self._backend.renew_lease(self._key, self._holder, self._lease):
            self.lost = True
            logger.warning("a refresh lock expired while its holder was still working")
            return False
        self._valid_until = asked_at + self._lease
        return True

    async def _try_acquire(self) -> int:
        attempt = asyncio.ensure_future(
            self._backend.acquire_lease(self._key, self._holder, self._lease)
        )
        try:
            # Shielded: a cancelled waiter must not leave a lease nobody releases.
            return int(await asyncio.shield(attempt))
        except asyncio.CancelledError:
            attempt.add_done_callback(self._release_if_acquired)
            raise

    def _release_if_acquired(self, attempt: asyncio.Future[int]) -> None:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result():
            task = asyncio.ensure_future(self._backend.release_lease(self._key, self._holder))
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            if self._renew_until is not None and time.monotonic() >= self._renew_until:
                return  # the body's deadline has passed: let the lease run out
            try:
                if not await self._renew():
                    return
            except Exception as error:  # keep trying: the store may come back within the lease
                logger.warning("could not renew a refresh lock: %s", type(error).__name__)


_background: set[asyncio.Future[bool]] = set()


class LeaseLocking:
    """Gives a store that implements the three lease primitives its ``lock()``.

    Subclasses define ``acquire_lease``, ``renew_lease`` and ``release_lease``.
    """

    _signals: ReleaseSignals

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int:
        raise NotImplementedError

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        raise NotImplementedError

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        raise NotImplementedError

    def lock(
        self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0
    ) -> AbstractAsyncContextManager[Lease]:
        """A lease on ``key`` (see ``LeaseLock``); waiters here wake as soon as it is released."""
        return LeaseLock(self, key, lease=lease, timeout=timeout, signals=self._signals)


def next_generation(previous: int, now: float | None = None) -> int:
    """The generation a new acquisition gets: above ``previous`` and the clock in µs,
    so a key whose lease rows were cleaned up never reissues an old generation."""
    micros = time.time_ns() // 1000 if now is None else int(now * 1_000_000)
    return max(previous + 1, micros)
