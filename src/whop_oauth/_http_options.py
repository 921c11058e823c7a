"""What a call to the provider may spend, and the HTTP client it goes through.

``HttpOptions`` is the one value for the limits of every call: ``OAuthClient``,
``register_client`` and ``validate_license`` each make one from their arguments,
so the same numbers are checked the same way. ``GivenOrOwnClient`` uses the
caller's ``httpx.AsyncClient`` and leaves it open, or makes a cookie-less one and
closes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import TracebackType

import httpx

from ._errors import ConfigurationError
from ._no_cookies import new_http_client

__all__ = ["GivenOrOwnClient", "HttpOptions"]


@dataclass(frozen=True, slots=True, init=False)
class HttpOptions:
    """The limits of one call: ``timeout`` per attempt, ``deadline`` for the call with
    its retries and waits (default ``2 * timeout``), ``max_retries``, and the largest
    response body read. Refused with ``ConfigurationError`` when they cannot work.

    >>> HttpOptions(timeout=5.0).deadline
    10.0
    """

    timeout: float
    deadline: float
    max_retries: int
    max_response_bytes: int

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        deadline: float | None = None,
        max_retries: int = 2,
        max_response_bytes: int = 1_000_000,
    ) -> None:
        if not _seconds(timeout) or not _count(max_retries) or not _count(max_response_bytes, 1):
            raise ConfigurationError("timeout, max_retries and max_response_bytes must be positive")
        if deadline is None:
            deadline = 2 * timeout
        elif not _seconds(deadline) or deadline < timeout:
            raise ConfigurationError("deadline must be a number of seconds >= timeout")
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "deadline", deadline)
        object.__setattr__(self, "max_retries", max_retries)
        object.__setattr__(self, "max_response_bytes", max_response_bytes)


class GivenOrOwnClient:
    """The caller's ``httpx.AsyncClient``, never closed here, or one made here (it keeps
    no cookies) and closed by ``aclose()`` or on leaving ``async with``.

    >>> async with GivenOrOwnClient(http_client) as client:  # doctest: +SKIP
    ...     response = await client.get(url)
    """

    def __init__(self, given: httpx.AsyncClient | None) -> None:
        self.owned = given is None
        self.client = new_http_client() if given is None else given

    async def aclose(self) -> None:
        if self.owned:
            await self.client.aclose()

    async def __aenter__(self) -> httpx.AsyncClient:
        return self.client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _seconds(value: object) -> bool:
    """A positive, finite number of seconds (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0


def _count(value: object, least: int = 0) -> bool:
    """An int of at least ``least`` (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least
