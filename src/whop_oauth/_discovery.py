"""Provider discovery (RFC 8414, then OpenID Connect Discovery) with a TTL cache.

Concurrent callers share one fetch. When a refetch fails after the TTL ran out,
the previous document keeps serving for a short grace period, so a provider
hiccup does not stop sign-ins that would work with the metadata already known.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import httpx

from ._authorize import ensure_s256
from ._errors import (
    ConfigurationError,
    DiscoveryError,
    InvalidResponseError,
    RateLimitedError,
    ServerUnavailableError,
    TransportError,
)
from ._http import IDEMPOTENT, HttpSender, check_url
from ._metadata import ProviderMetadata
from ._token_response import json_object, raise_for_status

__all__ = ["SingleFlightCache", "check_endpoints", "discover", "discovery_urls"]

logger = logging.getLogger("whop_oauth.discovery")

T = TypeVar("T")
_STALE_GRACE = 60.0  # seconds a stale value serves after a failed refetch


class SingleFlightCache(Generic[T]):
    """A value fetched at most once at a time, kept for ``ttl`` seconds."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self.value: T | None = None
        self._expires = 0.0
        self._task: asyncio.Task[T] | None = None

    def fresh(self) -> bool:
        return self.value is not None and time.monotonic() < self._expires

    def invalidate(self) -> None:
        self._expires = 0.0

    async def get(self) -> T:
        """The cached value, fetched (once, whatever the number of callers) if stale."""
        if self.value is not None and self.fresh():
            return self.value
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
            self._task.add_done_callback(self._done)
        # shield: a cancelled caller must not cancel the fetch others wait for.
        return await asyncio.shield(self._task)

    async def _run(self) -> T:
        try:
            value = await self._fetch()
        except (TransportError, ServerUnavailableError, RateLimitedError) as exc:
            if self.value is None:
                raise
            logger.warning("refetch failed (%s); serving the cached value", type(exc).__name__)
            self._expires = time.monotonic() + min(self.ttl, _STALE_GRACE)
            return self.value
        self.value = value
        self._expires = time.monotonic() + self.ttl
        return value

    def _done(self, task: asyncio.Task[T]) -> None:
        self._task = None
        if not task.cancelled():
            task.exception()  # marks it retrieved when every waiter went away


def discovery_urls(issuer: str) -> list[str]:
    """RFC 8414 §3.1 (well-known inserted before the path), then OIDC (appended)."""
    url = httpx.URL(issuer)
    path = url.path.rstrip("/")
    return [
        str(url.copy_with(path=f"/.well-known/oauth-authorization-server{path}")),
        str(url.copy_with(path=f"{path}/.well-known/openid-configuration")),
    ]


def check_endpoints(metadata: ProviderMetadata, allow_insecure_http: bool) -> None:
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "registration_endpoint",
        "jwks_uri",
    ):
        value = getattr(metadata, name)
        if value is not None:
            check_url(value, name, allow_insecure_http=allow_insecure_http)


async def discover(
    sender: HttpSender, issuer: str, *, allow_insecure_http: bool = False
) -> ProviderMetadata:
    """Fetch and validate ``issuer``'s metadata; its ``issuer`` must match exactly."""
    statuses: list[int] = []
    for url in discovery_urls(issuer):
        response = await sender.send("GET", url, what="discovery", policy=IDEMPOTENT)
        status = response.status_code
        if 400 <= status <= 499 and status != 429:
            statuses.append(status)  # not served here: try the next well-known location
            continue
        raise_for_status(response, "discovery")
        try:
            document = json_object(response, "discovery")
        except InvalidResponseError as exc:
            raise DiscoveryError(str(exc)) from None
        metadata = ProviderMetadata.from_document(document, expected_issuer=issuer)
        try:
            check_endpoints(metadata, allow_insecure_http)
            ensure_s256(metadata)
        except ConfigurationError as exc:
            raise DiscoveryError(f"unusable metadata document: {exc}") from None
        return metadata
    found = ", ".join(str(s) for s in statuses)
    raise DiscoveryError(f"no metadata document found for the issuer (HTTP {found})")
