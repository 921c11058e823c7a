"""Sending requests to the provider: timeouts, retries only where safe, a body cap.

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
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args
from urllib.parse import quote_plus

import httpx
from starlette.datastructures import Secret

from ._errors import ConfigurationError, InvalidResponseError, TransportError
from ._token_response import parse_retry_after

__all__ = [
    "IDEMPOTENT",
    "NEVER_RESEND",
    "NO_REPLAY",
    "ClientAuth",
    "HttpSender",
    "RetryPolicy",
    "check_url",
]

logger = logging.getLogger("whop_oauth.http")

AuthMethod = Literal["client_secret_post", "client_secret_basic", "none"]

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
# Headers describing the wire encoding of a body we have already decoded.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which failures may be retried for one kind of request."""

    name: str
    transport_errors: tuple[type[httpx.TransportError], ...]
    retry_statuses: frozenset[int]


# Answers saying the request was not acted on (RFC 6585 §4, RFC 9110 §15.6.4).
_NOT_ACTED_ON = frozenset({429, 503})
NEVER_RESEND = RetryPolicy("never-resend", _NOTHING_SENT, retry_statuses=frozenset())
NO_REPLAY = RetryPolicy("no-replay", _NOTHING_SENT, retry_statuses=_NOT_ACTED_ON)
IDEMPOTENT = RetryPolicy(
    "idempotent", _MAY_HAVE_ARRIVED, retry_statuses=frozenset({429, *range(500, 600)})
)


async def _sleep(seconds: float) -> None:
    # Module-level so tests can replace the wait without touching asyncio itself.
    await asyncio.sleep(seconds)


def check_url(url: str, what: str, *, allow_insecure_http: bool = False) -> str:
    """Refuse anything but https, except loopback hosts (or when explicitly allowed)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ConfigurationError(f"{what} is not a valid URL") from None
    if parsed.fragment:
        raise ConfigurationError(f"{what} must not contain a fragment")
    if parsed.scheme == "https" and parsed.host:
        return url
    if parsed.scheme == "http" and parsed.host and (allow_insecure_http or _loopback(parsed.host)):
        return url
    raise ConfigurationError(f"{what} must be an https URL (http only for loopback hosts)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How the client authenticates at the token, revocation and introspection endpoints."""

    client_id: str
    secret: Secret | None
    method: AuthMethod

    @classmethod
    def build(cls, client_id: str, secret: str | None, method: str | None) -> ClientAuth:
        """Default: ``client_secret_post`` with a secret, ``none`` without; refuse mismatches."""
        if method is None:
            method = "client_secret_post" if secret else "none"
        if method not in get_args(AuthMethod):
            raise ConfigurationError(f"unknown token_endpoint_auth_method {method!r}")
        if method == "none" and secret:
            raise ConfigurationError("token_endpoint_auth_method 'none' given with a client_secret")
        if method != "none" and not secret:
            raise ConfigurationError(f"token_endpoint_auth_method {method!r} needs a client_secret")
        return cls(client_id, Secret(secret) if secret else None, cast(AuthMethod, method))

    def apply(self, body: dict[str, str], headers: dict[str, str]) -> None:
        """Add the credentials to a request body and headers, per the method.

        ``client_id`` always goes in the body: Whop lists it as a parameter of every
        token request, and RFC 6749 allows it alongside HTTP Basic.
        """
        body["client_id"] = self.client_id
        if self.method == "client_secret_basic":
            assert self.secret is not None
            # RFC 6749 §2.3.1: each part form-urlencoded before base64.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(str(self.secret))}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif self.method == "client_secret_post":
            assert self.secret is not None
            body["client_secret"] = str(self.secret)


class HttpSender:
    """Sends one logical request with the retry policy, timeout and body cap applied."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        max_response_bytes: int = 1_000_000,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 10.0,
    ) -> None:
        self.check_limits(timeout, max_retries, max_response_bytes)
        self.client = client
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_response_bytes = max_response_bytes
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after

    @staticmethod
    def check_limits(timeout: float, max_retries: int, max_response_bytes: int) -> None:
        """Refuse limits that cannot work (called before any client is made)."""
        if max_retries < 0 or timeout <= 0 or max_response_bytes <= 0:
            raise ConfigurationError("timeout, max_retries and max_response_bytes must be positive")

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
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = await self._attempt(method, url, headers, data, json, auth)
            except policy.transport_errors as exc:
                if attempt >= self.max_retries:
                    raise _transport_error(what, url, exc) from exc
                delay = self._delay(attempt, None)
                logger.debug("%s: %s, retrying in %.2fs", what, type(exc).__name__, delay)
            except httpx.DecodingError as exc:
                raise InvalidResponseError(
                    f"{what}: the response body could not be decoded"
                ) from exc
            except httpx.TransportError as exc:
                raise _transport_error(what, url, exc) from exc
            else:
                _log(what, log_url or url, response.status_code, started)
                retry_in = self._retry_delay(response, attempt, policy)
                if retry_in is None:
                    return response
                delay = retry_in
                logger.debug("%s: HTTP %d, retrying in %.2fs", what, response.status_code, delay)
            await _sleep(delay)
            attempt += 1

    def _retry_delay(
        self, response: httpx.Response, attempt: int, policy: RetryPolicy
    ) -> float | None:
        status = response.status_code
        if status not in policy.retry_statuses or attempt >= self.max_retries:
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

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        json: Any,
        auth: httpx.Auth | None,
    ) -> httpx.Response:
        request = self.client.build_request(
            method, url, headers=headers, data=data, json=json, timeout=self.timeout
        )
        # Redirects are never followed: a token request or a bearer must not travel on.
        response = await self.client.send(
            request, stream=True, follow_redirects=False, auth=auth or httpx.USE_CLIENT_DEFAULT
        )
        try:
            body = await self._read_capped(response)
        finally:
            await response.aclose()
        headers_out = [
            (k, v) for k, v in response.headers.multi_items() if k.lower() not in _WIRE_HEADERS
        ]
        return httpx.Response(
            response.status_code, headers=headers_out, content=body, request=response.request
        )

    async def _read_capped(self, response: httpx.Response) -> bytes:
        cap = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise InvalidResponseError(f"response larger than {cap} bytes", response=response)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise InvalidResponseError(f"response larger than {cap} bytes", response=response)
            chunks.append(chunk)
        return b"".join(chunks)


def _endpoint(url: str) -> str:
    # Query strings are left out of logs and messages: they can carry credentials.
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


def _log(what: str, url: str, status: int, started: float) -> None:
    elapsed_ms = (time.monotonic() - started) * 1000
    logger.debug("%s %s -> HTTP %d in %.0f ms", what, _endpoint(url), status, elapsed_ms)


def _transport_error(what: str, url: str, exc: Exception) -> TransportError:
    host = httpx.URL(url).host
    return TransportError(f"{what}: {type(exc).__name__} talking to {host}")
