"""RFC 7591 dynamic client registration for the mock Whop."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from ._mock_authorize import is_loopback_host
from ._mock_http import read_json_object
from ._mock_model import MockClient, OAuthFault
from ._mock_state import ProviderState

__all__ = ["register_client"]

_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


def _redirect_uris(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(u, str) for u in value):
        raise OAuthFault("invalid_redirect_uri", "redirect_uris must be a non-empty list")
    for uri in value:
        parts = urlsplit(uri)
        https = parts.scheme == "https" and bool(parts.hostname)
        loopback = parts.scheme == "http" and is_loopback_host(parts.hostname)
        if parts.fragment or not (https or loopback):
            raise OAuthFault("invalid_redirect_uri", "redirect URIs must be https or loopback")
    return value


def _choice(data: dict[str, Any], name: str, default: Any, allowed: frozenset[str]) -> Any:
    value = data.get(name, default)
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v in allowed for v in values):
        raise OAuthFault("invalid_client_metadata", f"unsupported {name}")
    return value


async def register_client(request: Request, state: ProviderState) -> dict[str, Any]:
    """Register the client described by the JSON body; answer its credentials."""
    data = await read_json_object(request)
    redirect_uris = _redirect_uris(data.get("redirect_uris"))
    method = _choice(
        data, "token_endpoint_auth_method", "client_secret_basic", frozenset(_AUTH_METHODS)
    )
    grant_types = _choice(data, "grant_types", ["authorization_code"], _GRANT_TYPES)
    name = data.get("client_name", "Registered App")
    if not isinstance(name, str) or not name.strip():
        raise OAuthFault("invalid_client_metadata", "client_name must be a string")
    secret = None if method == "none" else "apik_" + secrets.token_urlsafe(24)
    client = MockClient(
        client_id="app_" + secrets.token_hex(8),
        client_secret=secret,
        redirect_uris=tuple(redirect_uris),
        allow_loopback_redirects=False,  # registered URIs are matched exactly
        name=name,
    )
    with state.lock:
        state.clients[client.client_id] = client
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(state.clock()),
        "client_name": name,
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_method": method,
        "grant_types": grant_types,
        "response_types": ["code"],
    }
    if secret is not None:
        body.update(client_secret=secret, client_secret_expires_at=0)
    return body
