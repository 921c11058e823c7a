"""A lease lock built on three store primitives: acquire, renew, release (compare-and-delete)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol

from .._errors import ConfigurationError, LockTimeout
from .._token import TokenKey

__all__ = ["LeaseBackend", "LeaseLock", "LeaseLocking", "ReleaseSignals"]

logger = logging.getLogger("whop_oauth.stores")

_FIRST_POLL = 0.005
_MAX_POLL = 0.05


class LeaseBackend(Protocol):
    """What a store provides so that ``LeaseLock`` can coordinate processes.

    ``holder`` is a random string unique to one acquisition; renew and release act
    only while the lease still belongs to that holder.
    """

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> bool: ...

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
    """``async with`` a lease on one key: wait for it, keep renewing it, release it.

    Renewal runs every third of the lease while the body works, so a slow refresh
    keeps the lock, and a killed process loses it once its lease runs out.
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
        self.lost = False  #: True when a renewal found the lease taken by someone else

    async def __aenter__(self) -> None:
        deadline = time.monotonic() + self._timeout
        poll = _FIRST_POLL
        while not await self._try_acquire():
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
        self._renewer = asyncio.create_task(self._renew_forever())

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

    async def _try_acquire(self) -> bool:
        attempt = asyncio.ensure_future(
            self._backend.acquire_lease(self._key, self._holder, self._lease)
        )
        try:
            # Shielded: a cancelled waiter must not leave a lease nobody releases.
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(self._release_if_acquired)
            raise

    def _release_if_acquired(self, attempt: asyncio.Future[bool]) -> None:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result():
            task = asyncio.ensure_future(self._backend.release_lease(self._key, self._holder))
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                still_ours = await self._backend.renew_lease(self._key, self._holder, self._lease)
            except Exception as error:  # keep trying: the store may come back within the lease
                logger.warning("could not renew a refresh lock: %s", type(error).__name__)
                continue
            if not still_ours:
                # Another worker took the key after our lease ran out; versioned writes
                # keep it from losing data, this flag and log make it visible.
                self.lost = True
                logger.warning("a refresh lock expired while its holder was still working")
                return


_background: set[asyncio.Future[bool]] = set()


class LeaseLocking:
    """Gives a store that implements the three lease primitives its ``lock()``.

    Subclasses define ``acquire_lease``, ``renew_lease`` and ``release_lease``.
    """

    _signals: ReleaseSignals

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        raise NotImplementedError

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        raise NotImplementedError

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        raise NotImplementedError

    def lock(
        self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0
    ) -> AbstractAsyncContextManager[None]:
        """A lease on ``key`` (see ``LeaseLock``); waiters here wake as soon as it is released."""
        return LeaseLock(self, key, lease=lease, timeout=timeout, signals=self._signals)
