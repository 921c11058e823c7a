"""Sending requests to the provider: deadlines, retries only where safe, a body cap.

Every httpx exception the library can meet is translated here, and only here.
Retry rules follow what a repeated request could do on the server:

* ``NEVER_RESEND`` (code exchange, registration): retried only when the
  connection was never made, so the server cannot have seen the request.
* ``NO_REPLAY`` (refresh): as above, plus 429 and 503 answers, which say the
  request was not acted on. A timeout or a reset after sending is *not* retried,
  nor a 500, 502 or 504, which a server or gateway may send after the refresh
  token was rotated: replayed by a blind retry, it makes servers with reuse
  detection revoke the whole grant.
* ``IDEMPOTENT`` (revoke, introspect, userinfo, discovery, JWKS, licenses):
  connection errors, timeouts, resets, 5xx and 429.

Time is bounded twice. httpx's timeouts apply to each connect, write and read, so
a server sending one byte per read timeout would hold a request forever; each
attempt therefore runs under an overall ``timeout``, and the whole call (attempts
and the waits between them) under ``deadline``: no wait is started that would end
past it, and an attempt gets at most what is left. An attempt cut off by the
overall timeout may have reached the server, so only ``IDEMPOTENT`` retries it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._errors import InvalidResponseError, TransportError
from ._http_options import HttpOptions
from ._token_response import parse_retry_after
from ._wire import send_once

__all__ = [
    "IDEMPOTENT",
    "NEVER_RESEND",
    "NO_REPLAY",
    "HttpSender",
    "RetryPolicy",
]

logger = logging.getLogger("whop_oauth.http")

# Errors raised before a byte of the request left this process.
_NOTHING_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_MAY_HAVE_ARRIVED: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which failures may be retried for one kind of request."""

    name: str
    transport_errors: tuple[type[httpx.TransportError], ...]
    retry_statuses: frozenset[int]
    #: Whether an attempt that may have reached the server can be sent again.
    may_resend: bool = False


# Answers saying the request was not acted on (RFC 6585 §4, RFC 9110 §15.6.4).
_NOT_ACTED_ON = frozenset({429, 503})
NEVER_RESEND = RetryPolicy("never-resend", _NOTHING_SENT, retry_statuses=frozenset())
NO_REPLAY = RetryPolicy("no-replay", _NOTHING_SENT, retry_statuses=_NOT_ACTED_ON)
IDEMPOTENT = RetryPolicy(
    "idempotent",
    _MAY_HAVE_ARRIVED,
    retry_statuses=frozenset({429, *range(500, 600)}),
    may_resend=True,
)


async def _sleep(seconds: float) -> None:
    # Module-level so tests can replace the wait without touching asyncio itself.
    await asyncio.sleep(seconds)


def _now() -> float:
    # Module-level so tests that replace ``_sleep`` can move this clock along with it.
    return time.monotonic()


class HttpSender:
    """Sends one logical request with the retry policy, deadlines and body cap applied.

    Each attempt (connect, send, headers and the capped body) gets at most
    ``options.timeout`` seconds in all; the whole call, retries and their waits
    included, at most ``options.deadline`` seconds.

    >>> sender = HttpSender(httpx.AsyncClient(), HttpOptions(timeout=5.0, deadline=12.0))
    >>> response = await sender.send("GET", url, what="jwks", policy=IDEMPOTENT)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        options: HttpOptions | None = None,
        *,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 10.0,
    ) -> None:
        self.client = client
        self.options = HttpOptions() if options is None else options
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after

    async def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        policy: RetryPolicy,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        auth: httpx.Auth | None = None,
        log_url: str | None = None,
    ) -> httpx.Response:
        """Send and return the final response, its body read (and capped).

        Only transport failures raise here (``TransportError``); the caller judges
        the status. ``what`` names the operation in logs and messages; ``log_url``
        replaces the URL in logs when its path holds a secret.
        """
        once = functools.partial(
            send_once,
            self.client,
            method,
            url,
            headers=headers,
            data=data,
            json=json,
            auth=auth,
            max_bytes=self.options.max_response_bytes,
        )
        deadline_at = _now() + self.options.deadline
        attempt = 0
        while True:
            started = _now()
            outcome = await self._try(once, min(self.options.timeout, deadline_at - started), what)
            if isinstance(outcome, httpx.Response):
                _log(what, log_url or url, outcome.status_code, started)
                delay = self._retry_delay(outcome, attempt, policy)
                if delay is None or not self._time_for_retry(delay, deadline_at):
                    return outcome
                reason = f"HTTP {outcome.status_code}"
            else:
                failure = outcome.error(
                    what, url, self.options.deadline if attempt else outcome.budget
                )
                delay = self._delay(attempt, None)
                if (
                    not outcome.retryable(policy)
                    or attempt >= self.options.max_retries
                    or not self._time_for_retry(delay, deadline_at)
                ):
                    raise failure from outcome.cause
                reason = type(outcome.cause).__name__
            logger.debug("%s: %s, retrying in %.2fs", what, reason, delay)
            await _sleep(delay)
            attempt += 1

    async def _try(
        self, once: Callable[..., Awaitable[httpx.Response]], budget: float, what: str
    ) -> httpx.Response | _Failure:
        """One attempt under the overall ``budget``: the response, or why there is none."""
        # httpx applies its connect limit to TCP and to TLS separately: at two fifths of
        # the budget each, a stuck connection fails as httpx's ConnectTimeout before the
        # overall limit, so it stays retry-safe (nothing was sent) and httpcore closes
        # the socket, which it does not when a TLS handshake is cancelled from outside.
        setup = budget * 0.4
        io_timeout = httpx.Timeout(self.options.timeout, connect=setup, pool=setup)
        try:
            async with asyncio.timeout(budget):
                return await once(io_timeout=io_timeout)
        except TimeoutError as exc:  # the overall limit, after the request may have left
            return _Failure(exc, budget, timed_out=True)
        except httpx.DecodingError as exc:
            raise InvalidResponseError(f"{what}: the response body could not be decoded") from exc
        except httpx.TransportError as exc:
            return _Failure(exc, budget, timed_out=False)

    def _time_for_retry(self, delay: float, deadline_at: float) -> bool:
        # After the wait, an attempt needs a useful slice of time (a tenth of the
        # timeout): a sliver would only send a request whose answer we cannot wait for.
        return _now() + delay + self.options.timeout / 10 <= deadline_at

    def _retry_delay(
        self, response: httpx.Response, attempt: int, policy: RetryPolicy
    ) -> float | None:
        status = response.status_code
        if status not in policy.retry_statuses or attempt >= self.options.max_retries:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > self.max_retry_after:
            return None  # the provider asked for a longer pause than a request should wait
        return self._delay(attempt, retry_after)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 - jitter, not crypto


def _endpoint(url: str) -> str:
    # Query strings are left out of logs and messages: they can carry credentials.
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


def _log(what: str, url: str, status: int, started: float) -> None:
    elapsed_ms = (_now() - started) * 1000
    logger.debug("%s %s -> HTTP %d in %.0f ms", what, _endpoint(url), status, elapsed_ms)


def _transport_error(what: str, url: str, exc: Exception) -> TransportError:
    host = httpx.URL(url).host
    return TransportError(f"{what}: {type(exc).__name__} talking to {host}")


@dataclass(frozen=True, slots=True)
class _Failure:
    """An attempt that ended without a response."""

    cause: Exception
    budget: float
    timed_out: bool  # by the overall limit, not one of httpx's

    def retryable(self, policy: RetryPolicy) -> bool:
        if self.timed_out:
            return policy.may_resend
        return isinstance(self.cause, policy.transport_errors)

    def error(self, what: str, url: str, seconds: float) -> TransportError:
        if not self.timed_out:
            return _transport_error(what, url, self.cause)
        host = httpx.URL(url).host
        return TransportError(f"{what}: no complete answer from {host} within {seconds:.3g} s")
