"""Reading provider responses: OAuth error bodies, JSON objects, token responses.

Everything a provider sends is untrusted input. A body that is not what the
specification promises raises ``InvalidResponseError``; an OAuth error body
raises the matching ``ProviderError`` subclass. Messages name fields and
statuses, never values.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ._errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidResponseError,
    ProviderError,
    RateLimitedError,
    ServerUnavailableError,
)
from ._scopes import split_scopes
from ._token import Token

__all__ = [
    "json_object",
    "parse_retry_after",
    "parse_token_response",
    "raise_for_status",
    "split_scope",
]

_ERROR_TYPES: dict[str, type[ProviderError]] = {
    "invalid_grant": InvalidGrantError,
    "invalid_client": InvalidClientError,
}
# RFC 6750 §3: Bearer error="...", error_description="..."
_CHALLENGE_PARAM = re.compile(r'(error|error_description|error_uri)="([^"]*)"')
_MAX_DESCRIPTION = 500


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The body as a JSON object, or ``InvalidResponseError``."""
    try:
        value = json.loads(response.content)
    except (ValueError, RecursionError):
        raise InvalidResponseError(
            f"{what}: the response is not JSON (HTTP {response.status_code})", response=response
        ) from None
    if not isinstance(value, dict):
        raise InvalidResponseError(
            f"{what}: the response is JSON but not an object", response=response
        )
    return value


def _oauth_error(response: httpx.Response) -> tuple[str, str | None, str | None] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]:
        description = body.get("error_description")
        uri = body.get("error_uri")
        return (
            body["error"][:100],
            description[:_MAX_DESCRIPTION] if isinstance(description, str) else None,
            uri if isinstance(uri, str) else None,
        )
    challenge = response.headers.get("WWW-Authenticate", "")
    if challenge.lower().startswith("bearer"):
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        if params.get("error"):
            description = params.get("error_description")
            cut = None if description is None else description[:_MAX_DESCRIPTION]
            return params["error"][:100], cut, params.get("error_uri")
    return None


def raise_for_status(
    response: httpx.Response, what: str, *, bare_status_errors: Mapping[int, str] | None = None
) -> None:
    """Raise the typed error a non-2xx response stands for.

    ``bare_status_errors`` names the OAuth error code to assume when a status comes
    without an OAuth error body (e.g. ``{401: "invalid_token"}`` at userinfo).
    """
    status = response.status_code
    if 200 <= status <= 299:
        return
    if 300 <= status <= 399:
        raise InvalidResponseError(
            f"{what}: unexpected redirect (HTTP {status})", response=response
        )
    found = _oauth_error(response)
    if found is None and bare_status_errors and status in bare_status_errors:
        found = (bare_status_errors[status], None, None)
    if status == 429 or (found is not None and found[0] == "rate_limit_exceeded"):
        error, description, uri = found or ("rate_limit_exceeded", None, None)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimitedError(error, description, uri, response=response, retry_after=retry_after)
    if found is not None:
        error_type = _ERROR_TYPES.get(found[0], ProviderError)
        raise error_type(*found, response=response)
    raise ServerUnavailableError(f"{what}: HTTP {status} without an OAuth error", response=response)


def split_scope(value: Any, response: httpx.Response | None = None) -> tuple[str, ...]:
    """A space-separated scope string (or a list of strings) as a tuple."""
    if isinstance(value, str):
        return split_scopes(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(dict.fromkeys(value))
    raise InvalidResponseError("the scope field is not a string", response=response)


def _optional_string(body: Mapping[str, Any], name: str, response: httpx.Response) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidResponseError(f"token response: {name} is not a string", response=response)
    return value


def _expires_in(value: Any, response: httpx.Response) -> float | None:
    if value is None:
        return None
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # A JSON integer too large for a float raises OverflowError, not a number.
        seconds = float(value) if not isinstance(value, int) or abs(value) < 2**53 else None
    elif isinstance(value, str) and re.fullmatch(r"\d{1,12}", value.strip()):
        seconds = float(value.strip())  # some providers send a numeric string
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise InvalidResponseError(
            "token response: expires_in is not a non-negative number", response=response
        )
    return seconds


def parse_token_response(
    response: httpx.Response,
    *,
    received_at: float,
    requested_scope: tuple[str, ...] = (),
    company_id: str | None = None,
) -> Token:
    """A successful token response as a ``Token`` (its id_token not yet validated).

    ``expires_at`` is ``received_at + expires_in``; a missing ``scope`` means the
    requested one was granted (RFC 6749 §5.1). Unknown fields are ignored.
    """
    body = json_object(response, "token response")
    access_token = _optional_string(body, "access_token", response)
    token_type = _optional_string(body, "token_type", response)
    if access_token is None or token_type is None:
        raise InvalidResponseError(
            "token response: access_token and token_type are required", response=response
        )
    if token_type.lower() != "bearer":
        raise InvalidResponseError("token response: token_type is not Bearer", response=response)
    expires_in = _expires_in(body.get("expires_in"), response)
    scope = body.get("scope")
    return Token(
        access_token=access_token,
        token_type="Bearer",  # noqa: S106 - the scheme name, normalised
        expires_at=None if expires_in is None else received_at + expires_in,
        refresh_token=_optional_string(body, "refresh_token", response),
        scopes=requested_scope if scope is None else split_scope(scope, response),
        id_token=_optional_string(body, "id_token", response),
        company_id=company_id,
        issued_at=received_at,
        # Whop documents no such field; a provider that sends one confirms the grant's company.
        granted_company_id=_optional_string(body, "company_id", response),
    )
