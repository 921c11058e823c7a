"""Records the mock Whop keeps: requests, codes, grants, tokens (by digest)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .._scopes import split_scopes

__all__ = [
    "Access",
    "AuthorizationRequest",
    "Code",
    "Grant",
    "Refresh",
    "digest",
    "parse_scope",
]


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated ``/oauth/authorize`` request, waiting for approval or a code exchange."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    code_challenge: str
    state: str | None = None
    nonce: str | None = None
    company_id: str | None = None


@dataclass(slots=True)
class Code:
    request: AuthorizationRequest
    user_id: str
    expires_at: float
    grant_id: str | None = None  # set once exchanged: the code is spent


@dataclass(slots=True)
class Grant:
    grant_id: str
    client_id: str
    user_id: str
    scope: tuple[str, ...]
    company_id: str | None
    auth_time: int
    revoked: bool = False
    rotations: int = 0


@dataclass(slots=True)
class Refresh:
    grant_id: str
    expires_at: float | None
    used: bool = False


@dataclass(slots=True)
class Access:
    grant_id: str
    scope: tuple[str, ...]
    issued_at: int
    expires_at: float
    revoked: bool = False


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Space-separated scope string → ordered, de-duplicated tuple."""
    return split_scopes(value or "")
