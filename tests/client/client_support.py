"""Constants and helpers for the client tests (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from whop_oauth import ProviderMetadata

ISSUER = "https://idp.test"
CLIENT_ID = "app_client 1"  # a space, so form-encoding of Basic credentials is exercised
SECRET = "apik_s3cret:with/odd+chars"
REDIRECT_URI = "https://app.example/auth/callback"

METADATA = ProviderMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/oauth/authorize",
    token_endpoint=f"{ISSUER}/oauth/token",
    userinfo_endpoint=f"{ISSUER}/oauth/userinfo",
    revocation_endpoint=f"{ISSUER}/oauth/revoke",
    introspection_endpoint=f"{ISSUER}/oauth/introspect",
    registration_endpoint=f"{ISSUER}/oauth/register",
    jwks_uri=f"{ISSUER}/jwks",
    id_token_signing_alg_values_supported=("ES256",),
)
TOKEN_URL = METADATA.token_endpoint
JWKS_URL = f"{ISSUER}/jwks"

#: (token_endpoint_auth_method, client_secret) for every way a client authenticates.
AUTH_METHODS = [
    pytest.param("client_secret_post", SECRET, id="post"),
    pytest.param("client_secret_basic", SECRET, id="basic"),
    pytest.param("none", None, id="none"),
]


def form(request: httpx.Request) -> dict[str, str]:
    """A form-encoded request body as a dict (each field must appear once)."""
    parsed = parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


def assert_client_auth(request: httpx.Request, method: str, secret: str | None) -> None:
    """The request authenticates exactly as ``method`` says, and no other way."""
    body = form(request)
    assert body["client_id"] == CLIENT_ID
    if method == "client_secret_basic":
        expected = base64.b64encode(b"app_client+1:apik_s3cret%3Awith%2Fodd%2Bchars").decode()
        assert request.headers["Authorization"] == f"Basic {expected}"
        assert "client_secret" not in body
    elif method == "client_secret_post":
        assert body["client_secret"] == secret
        assert "Authorization" not in request.headers
    else:
        assert "client_secret" not in body
        assert "Authorization" not in request.headers
        assert SECRET not in request.content.decode()


def token_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": "at_1",
        "refresh_token": "rt_1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid profile email",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def unsigned_token(claims: dict[str, Any]) -> str:
    """An ``alg: none`` token: header and payload, empty signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'kid': 'k1'})}.{part(claims)}."
