"""The token store protocol that every backend implements."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .._errors import ConfigurationError
from .._token import Token, TokenKey
from ._lease import Lease

__all__ = ["DEFAULT_RETENTION", "StoredToken", "TokenStore", "page_cursor"]

def page_cursor(after: TokenKey | None, limit: int | None) -> tuple[str, str, str]:
    """``grant_keys``' paging: the (user, issuer, client id) the page starts after.

    Every key sorts after ``("", "", "")`` (its parts are never empty).

    >>> page_cursor(None, 100)
    ('', '', '')
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError("limit is a positive int (or None for every key)")
    if after is None:
        return ("", "", "")
    return (after.user, after.issuer, after.client_id)


#: How long a grant may go unwritten before cleanup removes it (30 days).
DEFAULT_RETENTION = 30 * 24 * 3600.0
#: A token that cannot be refreshed is kept this long after it expired.
_EXPIRED_GRACE = 300.0


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as read from a store, with the version its row had."""

    token: Token = field(repr=False)
    version: int


@runtime_checkable
class TokenStore(Protocol):
    """Async storage for grants, keyed by ``TokenKey``, with a lease lock per key.

    Implement it to bring your own backend; no base class is needed.

    - ``put`` with ``expected_version`` writes only if the stored version still is
      that one (``0`` means "nothing stored yet"), else raises ``StaleWriteError``.
      Every successful ``put`` increases the version. ``delete`` takes the same guard.
    - ``put`` with ``fence`` (a ``Lease.generation``) also raises ``StaleWriteError``
      when a newer lease on the key was issued since that one: a holder that lost
      its lock cannot write.
    - ``lock`` is a lease: held at most ``lease`` seconds unless renewed while the
      holder works, so a killed holder blocks others only until it runs out.
      Taking it waits up to ``timeout`` seconds, then raises ``LockTimeout``. It
      yields a ``Lease`` (see ``LeaseLocking``, which builds one from three
      primitives).
    - A value read back decrypts only under the key and version it was written
      with, so an older ciphertext put back in a row does not decrypt.

    ```python
    async with store.lock(key, lease=30, timeout=60) as lease:
        stored = await store.get(key)
        await lease.reserve(20)
        ...
        await store.put(
            key, new_token, expected_version=stored.version, fence=lease.generation
        )
    ```
    """

    async def get(self, key: TokenKey) -> StoredToken | None: ...

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken: ...

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool: ...

    def lock(
        self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0
    ) -> AbstractAsyncContextManager[Lease]: ...

    async def aclose(self) -> None: ...


def next_version(current: int, now: float | None = None) -> int:
    """The version a write after ``current`` gets.

    At least the wall clock in microseconds, so a grant deleted and created again
    does not reuse a version a slow writer may still expect (no ABA).
    """
    micros = time.time_ns() // 1000 if now is None else int(now * 1_000_000)
    return max(current + 1, micros)


def purge_at(token: Token, retention: float, now: float | None = None) -> float:
    """When cleanup may remove a grant just written: after ``retention`` unwritten,
    or soon after expiry when there is no refresh token to renew it."""
    written = time.time() if now is None else now
    deadline = written + retention
    if not token.refresh_token and token.expires_at is not None:
        deadline = min(deadline, token.expires_at + _EXPIRED_GRACE)
    return deadline
