"""JSON the mock Whop publishes: discovery, per-scope user data, JWT bodies."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from typing import Any

from ._mock_keys import SigningKeys
from ._mock_model import MockUser
from ._mock_records import Grant

__all__ = [
    "access_token_claims",
    "api_account",
    "discovery_document",
    "id_token_claims",
    "token_response",
    "user_claims",
]


def user_claims(user: MockUser, scope: Collection[str]) -> dict[str, Any]:
    """OIDC standard claims the scope allows (``profile``, ``email``), always ``sub``."""
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scope:
        claims["name"] = user.name
        claims["preferred_username"] = user.username
        if user.picture is not None:
            claims["picture"] = user.picture
    if "email" in scope:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


def id_token_claims(
    *,
    issuer: str,
    client_id: str,
    user: MockUser,
    scope: Collection[str],
    now: int,
    lifetime: int,
    nonce: str | None,
    auth_time: int,
) -> dict[str, Any]:
    claims = user_claims(user, scope)
    claims.update(
        iss=issuer, aud=client_id, azp=client_id, iat=now, exp=now + lifetime, auth_time=auth_time
    )
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


def access_token_claims(
    issuer: str, grant: Grant, scope: Collection[str], *, now: int, lifetime: int
) -> dict[str, Any]:
    """An RFC 9068-shaped body; Whop's access tokens are JWTs too."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": grant.user_id,
        "aud": f"{issuer}/api/v1",
        "client_id": grant.client_id,
        "scope": " ".join(scope),
        "jti": secrets.token_hex(12),
        "iat": now,
        "exp": now + lifetime,
    }
    if grant.company_id is not None:
        claims["company_id"] = grant.company_id
    return claims


def token_response(
    keys: SigningKeys,
    issuer: str,
    grant: Grant,
    user: MockUser,
    scope: tuple[str, ...],
    *,
    nonce: str | None,
    now: int,
    ttl: int,
    company_echo: Collection[str] = (),
    id_token_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A fresh token response: JWT access token, opaque refresh token, id_token if openid.

    The granted company is named in the response body and the id_token only where
    ``company_echo`` says so (Whop documents neither).
    """
    access_claims = access_token_claims(issuer, grant, scope, now=now, lifetime=ttl)
    body: dict[str, Any] = {
        "access_token": keys.sign(access_claims, typ="at+jwt"),
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": secrets.token_urlsafe(48),
        "scope": " ".join(scope),
    }
    if grant.company_id is not None and "token_response" in company_echo:
        body["company_id"] = grant.company_id
    if "openid" in scope:
        claims = id_token_claims(
            issuer=issuer,
            client_id=grant.client_id,
            user=user,
            scope=scope,
            now=now,
            lifetime=ttl,
            nonce=nonce,
            auth_time=grant.auth_time,
        )
        if grant.company_id is not None and "id_token" in company_echo:
            claims["company_id"] = grant.company_id
        claims.update(id_token_overrides or {})
        body["id_token"] = keys.sign(claims)
    return body


def api_account(user: MockUser, scope: Collection[str]) -> dict[str, Any]:
    """The mock's ``GET /api/v1/accounts/me`` body, shaped like Whop's user objects."""
    account: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "profile_picture": {"url": user.picture} if user.picture else None,
    }
    if "email" in scope:
        account["email"] = user.email
    return account


def discovery_document(base: str) -> dict[str, Any]:
    """The ``/.well-known/openid-configuration`` body for issuer ``base``."""
    auth_methods = ["client_secret_post", "client_secret_basic", "none"]
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "registration_endpoint": f"{base}/oauth/register",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "scopes_supported": ["openid", "profile", "email"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "name",
            "preferred_username",
            "picture",
            "email",
            "email_verified",
        ],
        "authorization_response_iss_parameter_supported": True,
    }
