"""The token store protocol that every backend implements."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .._token import Token, TokenKey

__all__ = ["StoredToken", "TokenStore"]


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
      Every successful ``put`` increases the version.
    - ``lock`` is a lease: held at most ``lease`` seconds unless renewed while the
      holder works, so a killed holder blocks others only until it runs out.
      Taking it waits up to ``timeout`` seconds, then raises ``LockTimeout``.
    """

    async def get(self, key: TokenKey) -> StoredToken | None: ...

    async def put(
        self, key: TokenKey, token: Token, *, expected_version: int | None = None
    ) -> StoredToken: ...

    async def delete(self, key: TokenKey) -> bool: ...

    def lock(
        self, key: TokenKey, *, lease: float = 30.0, timeout: float = 60.0
    ) -> AbstractAsyncContextManager[None]: ...

    async def aclose(self) -> None: ...
