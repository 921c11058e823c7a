"""Provider discovery (RFC 8414 and OpenID Connect Discovery, merged) with a TTL cache.

Every well-known document the issuer serves is read and merged: some servers
(django-oauth-toolkit) put ``userinfo_endpoint`` only in the OpenID document and
``revocation_endpoint`` only in the RFC 8414 one. Each document's ``issuer`` must
equal the configured one exactly; on a disagreement the earlier document wins.

Concurrent callers share one fetch. When a refetch fails after the TTL ran out,
the previous document keeps serving for a short grace period, so a provider
hiccup does not stop sign-ins that would work with the metadata already known.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Generic, TypeVar

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
from ._http import IDEMPOTENT, HttpSender
from ._metadata import ProviderMetadata
from ._token_response import json_object, raise_for_status
from ._urls import check_url

__all__ = [
    "SingleFlightCache",
    "check_endpoints",
    "discover",
    "discovery_urls",
    "missing_features",
]

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

    def current(self) -> T | None:
        """The value while it is fresh, else ``None`` (never fetches)."""
        return self.value if self.fresh() else None

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
    """Where an issuer's metadata may be, in the order their fields take precedence.

    RFC 8414 §3.1 (well-known inserted before the path), OpenID Connect Discovery
    (appended), and for an issuer with a path RFC 8414's appended form, which
    servers mounted under a path (django-oauth-toolkit's ``/o``) serve.
    """
    url = httpx.URL(issuer)
    path = url.path.rstrip("/")
    urls = [
        str(url.copy_with(path=f"/.well-known/oauth-authorization-server{path}")),
        str(url.copy_with(path=f"{path}/.well-known/openid-configuration")),
    ]
    if path:
        urls.append(str(url.copy_with(path=f"{path}/.well-known/oauth-authorization-server")))
    return urls


#: Endpoints whose absence turns off something the library does, and what.
_FEATURES = {
    "revocation_endpoint": "sign-out and replaced grants are not revoked at the provider "
    "(they stay live until they expire)",
    "userinfo_endpoint": "client.userinfo() raises ConfigurationError",
}


def missing_features(metadata: ProviderMetadata, scope: Collection[str]) -> list[str]:
    """One line per endpoint the library would use that the metadata lacks.

    >>> from whop_oauth import WHOP
    >>> missing_features(WHOP, ("openid", "profile"))
    []
    """
    lines = [
        f"no {name}: {effect}"
        for name, effect in _FEATURES.items()
        if getattr(metadata, name) is None
    ]
    if "openid" in scope and metadata.issues_id_tokens and metadata.jwks_uri is None:
        lines.append("no jwks_uri: id_tokens cannot be verified, so openid sign-ins fail")
    return lines


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


async def _fetch(sender: HttpSender, url: str, issuer: str) -> dict[str, Any] | int:
    """The document at ``url`` (its issuer checked), or the 4xx status of one not served."""
    response = await sender.send("GET", url, what="discovery", policy=IDEMPOTENT)
    status = response.status_code
    if 400 <= status <= 499 and status != 429:
        return status  # not served here: another well-known location may be
    raise_for_status(response, "discovery")
    try:
        document = json_object(response, "discovery")
    except InvalidResponseError as exc:
        raise DiscoveryError(f"{url}: {exc}") from None
    if document.get("issuer") != issuer:
        # RFC 8414 §3.3 / OIDC Discovery §4.3: every document must name this issuer.
        found = document.get("issuer")
        shown = repr(found) if isinstance(found, str) else "no string"
        raise DiscoveryError(f"{url} is for issuer {shown[:200]}, expected {issuer!r}")
    return document


def _merge(documents: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for url, document in documents:
        for name, value in document.items():
            if value is None:
                continue
            if name not in merged:
                merged[name] = value
            elif merged[name] != value:
                logger.info("metadata documents disagree on %s; %s loses", name, url)
    return merged


async def discover(
    sender: HttpSender, issuer: str, *, allow_insecure_http: bool = False
) -> ProviderMetadata:
    """Fetch, check and merge ``issuer``'s metadata documents (see ``discovery_urls``).

    Each document's ``issuer`` must match exactly. A transport or 5xx failure on
    one of the two standard locations fails the whole load: a partial merge could
    silently lose an endpoint (revocation) the app relies on. The third, appended
    location is a courtesy to servers mounted under a path: its failures are ignored.
    """
    urls = discovery_urls(issuer)
    # All locations at once: one deadline bounds the load, not one per location.
    results = await asyncio.gather(
        *(_fetch(sender, url, issuer) for url in urls), return_exceptions=True
    )
    documents: list[tuple[str, dict[str, Any]]] = []
    statuses: list[int] = []
    for position, (url, result) in enumerate(zip(urls, results, strict=True)):
        if isinstance(result, BaseException):
            if position >= 2:  # not a standard location: it may answer anything
                continue
            raise result
        if isinstance(result, int):
            statuses.append(result)
        else:
            documents.append((url, result))
    if not documents:
        found = ", ".join(str(s) for s in statuses)
        raise DiscoveryError(f"no metadata document found for the issuer (HTTP {found})")
    metadata = ProviderMetadata.from_document(_merge(documents), expected_issuer=issuer)
    try:
        check_endpoints(metadata, allow_insecure_http)
        ensure_s256(metadata)
    except ConfigurationError as exc:
        raise DiscoveryError(f"unusable metadata document: {exc}") from None
    return metadata
