"""Whop license-key validation (``/api/v2/memberships/{key}/validate_license``).

Whop documents only this form: the license key is a path segment, so httpx's own
INFO line (``HTTP Request: POST …/memberships/<key>/validate_license``) would log
it. A filter on the ``httpx`` logger, put back before every validation, rewrites
that one path in any record it sees; httpcore's DEBUG lines never show the path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ._api_keys import APIKeyAuth
from ._errors import ConfigurationError, ServerUnavailableError
from ._http import IDEMPOTENT, HttpSender
from ._http_options import GivenOrOwnClient, HttpOptions
from ._token_response import json_object, raise_for_status
from ._urls import check_url

__all__ = ["LicenseResult", "validate_license"]

LicenseStatus = Literal["valid", "metadata_mismatch", "not_found"]
_REDACTED = "<license key>"
_STATUSES: dict[int, LicenseStatus] = {
    200: "valid",
    201: "valid",
    400: "metadata_mismatch",
    404: "not_found",
}


@dataclass(frozen=True, slots=True)
class LicenseResult:
    """What Whop said about a license key.

    ``valid``: the key is good (``membership`` holds Whop's membership object);
    ``metadata_mismatch``: the key is bound to other metadata (another machine),
    and the user must reset it in their Whop dashboard; ``not_found``: no such key.
    ``membership`` stays out of the repr: it contains the license key.

    >>> result = LicenseResult("not_found")
    >>> result.valid
    False
    """

    status: LicenseStatus
    membership: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    @property
    def membership_id(self) -> str | None:
        value = self.membership.get("id")
        return value if isinstance(value, str) else None


async def validate_license(
    license_key: str,
    *,
    api_key: str,
    metadata: Mapping[str, Any] | None = None,
    http_client: httpx.AsyncClient | None = None,
    base_url: str = "https://api.whop.com",
    timeout: float = 10.0,  # noqa: ASYNC109 - per-request httpx timeout, like the client's
    allow_insecure_http: bool = False,
) -> LicenseResult:
    """Ask Whop whether ``license_key`` is valid, binding ``metadata`` on first use.

    The API key needs the "Membership/Validate License" permission. 201, 400 and
    404 are answers (see ``LicenseResult``); any other status raises the typed
    error for it (``ProviderError``, ``RateLimitedError``, ``ServerUnavailableError``).

    >>> result = await validate_license(key, api_key=API_KEY,
    ...                                 metadata={"HWID": hwid})  # doctest: +SKIP
    >>> result.valid  # doctest: +SKIP
    True
    """
    if not isinstance(license_key, str) or license_key.strip(".") == "" or not license_key.strip():
        raise ConfigurationError("license_key must be a non-empty string, not a dot segment")
    options = HttpOptions(timeout=timeout)
    base = check_url(base_url, "base_url", allow_insecure_http=allow_insecure_http).rstrip("/")
    # quote with safe="": a key cannot add path segments ("../") or a query.
    url = f"{base}/api/v2/memberships/{quote(license_key, safe='')}/validate_license"
    auth = APIKeyAuth(api_key, allowed_origins=[base], allow_insecure_http=allow_insecure_http)
    _install_log_redaction()
    async with GivenOrOwnClient(http_client) as client:
        response = await HttpSender(client, options).send(
            "POST",
            url,
            what="license validation",
            policy=IDEMPOTENT,  # same key and metadata give the same answer
            headers={"Accept": "application/json"},
            json={"metadata": dict(metadata or {})},
            auth=auth,
            log_url=f"{base}/api/v2/memberships/{_REDACTED}/validate_license",
        )
    status = _STATUSES.get(response.status_code)
    if status is None:
        bare = {401: "invalid_api_key", 403: "insufficient_permissions"}
        raise_for_status(response, "license validation", bare_status_errors=bare)
        raise ServerUnavailableError(
            f"license validation: unexpected HTTP {response.status_code}", response=response
        )
    membership: Mapping[str, Any] = {}
    if status == "valid" and response.content:
        membership = json_object(response, "license validation")
    return LicenseResult(status, MappingProxyType(dict(membership)))


class _LicenseKeyRedaction(logging.Filter):
    """Replaces the key in ``…/memberships/<key>/validate_license``; drops no record."""

    _PATH = re.compile(r"(/memberships/)[^/?#\s\"']+(/validate_license)")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the handler's to report, not ours to raise
            return True
        if "validate_license" in message:
            record.msg, record.args = self._PATH.sub(rf"\1{_REDACTED}\2", message), ()
        return True


_REDACTION = _LicenseKeyRedaction()


def _install_log_redaction() -> None:
    """Put the redaction on httpx's logger (again, if logging was reconfigured since)."""
    httpx_logger = logging.getLogger("httpx")
    if _REDACTION not in httpx_logger.filters:
        httpx_logger.addFilter(_REDACTION)
