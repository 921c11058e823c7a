"""Validating ``/oauth/authorize`` requests and building the redirects back."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._urls import is_loopback_host
from ._mock_model import MockClient, OAuthFault
from ._mock_records import AuthorizationRequest, parse_scope

__all__ = ["PageError", "is_loopback_host", "redirect_target", "resolve_client", "validate"]

DEFAULT_SCOPE = ("openid", "profile", "email")
_STANDARD_SCOPES = frozenset(DEFAULT_SCOPE)
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


class PageError(Exception):
    """A request the mock must not redirect back (unknown client, bad redirect_uri)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _redirect_allowed(client: MockClient, uri: str) -> bool:
    if uri in client.redirect_uris:
        return True
    parts = urlsplit(uri)
    # RFC 8252 §7.3: native and local apps get any port on the loopback interface.
    return (
        client.allow_loopback_redirects
        and parts.scheme == "http"
        and is_loopback_host(parts.hostname)
        and not parts.fragment
    )


def _single(query: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in query if key == name]
    if len(values) > 1:
        raise OAuthFault("invalid_request", f"parameter {name!r} is repeated")
    return values[0] if values else None


def resolve_client(
    query: Sequence[tuple[str, str]], clients: Mapping[str, MockClient]
) -> tuple[MockClient, str, str | None]:
    """The client, its redirect_uri and state; errors here are shown, never redirected."""
    try:
        client_id = _single(query, "client_id")
        redirect_uri = _single(query, "redirect_uri")
        state = _single(query, "state")
    except OAuthFault as exc:
        raise PageError(exc.description) from exc
    client = clients.get(client_id or "")
    if client is None:
        raise PageError("Unknown client_id: this app is not registered with Whop.")
    if not redirect_uri or not _redirect_allowed(client, redirect_uri):
        raise PageError("The redirect_uri is not registered for this app.")
    return client, redirect_uri, state


def validate(
    query: Sequence[tuple[str, str]], client: MockClient, redirect_uri: str
) -> AuthorizationRequest:
    """Everything else; an ``OAuthFault`` here is sent back on the redirect."""
    response_type = _single(query, "response_type")
    if response_type != "code":
        error = "invalid_request" if response_type is None else "unsupported_response_type"
        raise OAuthFault(error, "response_type must be code")
    challenge = _single(query, "code_challenge")
    if not challenge:
        raise OAuthFault("invalid_request", "code_challenge is required (PKCE)")
    if _single(query, "code_challenge_method") != "S256":
        raise OAuthFault("invalid_request", "code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise OAuthFault("invalid_request", "code_challenge is not a base64url SHA-256 digest")
    scope = parse_scope(_single(query, "scope")) or DEFAULT_SCOPE
    unknown = [s for s in scope if s not in _STANDARD_SCOPES and ":" not in s]
    if unknown:
        raise OAuthFault("invalid_scope", f"unknown scope {unknown[0]!r}")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=challenge,
        state=_single(query, "state"),
        nonce=_single(query, "nonce") or None,
        company_id=_single(query, "company_id") or None,
    )


def redirect_target(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """``redirect_uri`` with ``params`` added to its query (RFC 6749 §3.1.2 keeps its own)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))
