"""Revoking grants the app lets go of, and retrying the revocations that failed.

A replaced or signed-out grant must not stay live at the provider. When its
revocation fails (provider down, timeout), the token waits here, in this
process's memory only, and is sent again the next time the revocation endpoint
answers (after a later revocation succeeds, on ``TokenManager.revoke_pending()``,
or on a later sign-out). Kept in memory rather than in the store on purpose: a
stored copy would be a second place a refresh token lives. A restart loses the
queue; each loss was logged at WARNING when the revocation failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ._errors import ConfigurationError, InvalidClientError, WhopOAuthError
from ._reasons import describe
from ._token import Token

__all__ = ["Revocations"]

logger = logging.getLogger("whop_oauth.manager")

#: Tokens waiting for a retry; beyond this the oldest is given up (and logged).
_MAX_PENDING = 1000
#: A token is given up after this many failed attempts.
_MAX_ATTEMPTS = 8
#: Earlier failures retried after each successful revocation, inside its request.
_RETRIES_PER_SUCCESS = 5


class _Revoker(Protocol):
    async def revoke(self, token: Token) -> object: ...


@dataclass(slots=True)
class _Pending:
    token: Token = field(repr=False)
    attempts: int
    reason: str


class Revocations:
    """Revokes tokens within a time budget; keeps the failures for a later retry.

    ```python
    revocations = Revocations(client, budget=5.0)
    await revocations.revoke(old_token, reason="replaced")  # never raises
    remaining = await revocations.retry()
    ```
    """

    def __init__(self, client: _Revoker, *, budget: float) -> None:
        self._client = client
        self._budget = budget
        self._pending: deque[_Pending] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def __repr__(self) -> str:
        return f"<Revocations pending={len(self._pending)}>"

    async def revoke(self, token: Token, *, reason: str) -> bool:
        """Revoke now; on failure log (no token) and keep it for a retry. Never raises."""
        if await self._send(_Pending(token, 0, reason)):
            # The endpoint answers: a good moment for a few earlier failures (a few, as
            # this runs inside someone's sign-in or sign-out; revoke_pending() does all).
            await self.retry(limit=_RETRIES_PER_SUCCESS)
            return True
        return False

    async def retry(self, *, limit: int | None = None) -> int:
        """Send waiting revocations once more (at most ``limit``); returns how many wait.

        Safe to run concurrently: each waiting revocation is taken by one caller.
        """
        left = len(self._pending) if limit is None else limit
        while left > 0 and self._pending:  # re-checked after every await
            left -= 1
            if not await self._send(self._pending.popleft()):
                break  # still failing: leave the rest for later rather than wait on each
        return len(self._pending)

    async def _send(self, item: _Pending) -> bool:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._budget):
                await self._client.revoke(item.token)
        except (TimeoutError, WhopOAuthError) as error:
            self._failed(item, error, time.monotonic() - started)
            return False
        return True

    def _failed(self, item: _Pending, error: BaseException, took: float) -> None:
        # The provider's code and description, cleaned; the token itself never.
        what = describe(error, hide=(item.token.access_token, item.token.refresh_token))
        item.attempts += 1
        # A client the provider refuses will be refused again: no point in retrying.
        final = isinstance(error, InvalidClientError | ConfigurationError)
        if final or item.attempts >= _MAX_ATTEMPTS:
            logger.warning(
                "revoking a %s grant failed (%s, attempt %d); giving up: it stays live at "
                "the provider until its refresh token expires", item.reason, what, item.attempts
            )
            return
        logger.warning(
            "revoking a %s grant failed (%s after %.1f s); retried later",
            item.reason, what, took,
        )
        if len(self._pending) >= _MAX_PENDING:
            dropped = self._pending.popleft()
            logger.warning("too many revocations waiting: gave up a %s grant", dropped.reason)
        self._pending.append(item)
