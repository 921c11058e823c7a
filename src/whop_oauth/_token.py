"""The token value and the key it is stored under."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ._errors import InvalidTokenKey, InvalidValueError

__all__ = ["DEFAULT_TENANT", "Token", "TokenKey"]

#: The tenant used by single-tenant apps that never name one.
DEFAULT_TENANT = "default"


def check_key_part(name: str, value: object) -> None:
    """Refuse, as ``InvalidTokenKey``, a key part no store can write.

    >>> check_key_part("tenant", "biz_1")
    """
    if not isinstance(value, str) or not value:
        raise InvalidTokenKey(f"TokenKey.{name} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: no store can write it, so refuse it here, typed.
        raise InvalidTokenKey(f"TokenKey.{name} is not valid Unicode text") from None


@dataclass(frozen=True, slots=True)
class TokenKey:
    """Where a user's grant lives: tenant, user, and the OAuth client that holds it.

    A tenant is usually a Whop company (``biz_...``); single-tenant apps keep the
    default. Issuer and client id are part of the key so that one tenant's tokens,
    or one client's, can never be read for another.

    >>> key = TokenKey("biz_123", "user_456", "https://api.whop.com", "app_1")
    >>> key.tenant
    'biz_123'
    """

    tenant: str
    user: str
    issuer: str
    client_id: str

    def __post_init__(self) -> None:
        for name in ("tenant", "user", "issuer", "client_id"):
            check_key_part(name, getattr(self, name))

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return (self.tenant, self.user, self.issuer, self.client_id)


@dataclass(frozen=True, slots=True)
class Token:
    """An access token, the refresh token that renews it, and what came with them.

    ``expires_at`` is a Unix time computed when the response was received, or
    ``None`` when the provider sent no ``expires_in``. The repr never shows a
    token value. ``company_id`` is the company sent again on refresh: at first
    what the login *asked* for (user input). ``granted_company_id`` is what the
    provider's token response itself named, if it named one.

    >>> token = Token(access_token="at", token_type="Bearer", expires_at=time.time() + 3600)
    >>> token.is_expired()
    False
    """

    access_token: str = field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_at: float | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    id_token: str | None = field(default=None, repr=False)
    id_token_claims: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )
    company_id: str | None = None
    issued_at: float = field(default_factory=time.time)
    granted_company_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id_token_claims, MappingProxyType):
            object.__setattr__(
                self, "id_token_claims", MappingProxyType(dict(self.id_token_claims))
            )

    def is_expired(self, leeway: float = 0.0, *, now: float | None = None) -> bool:
        """True when the token expires within ``leeway`` seconds (never, without expiry)."""
        if self.expires_at is None:
            return False
        current = time.time() if now is None else now
        return current + leeway >= self.expires_at

    @property
    def lifetime(self) -> float | None:
        """Seconds from receipt to expiry, as granted (``None`` without an expiry)."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - self.issued_at)

    @property
    def subject(self) -> str | None:
        """The ``sub`` claim of the id_token, when there was one."""
        sub = self.id_token_claims.get("sub")
        return sub if isinstance(sub, str) else None

    def with_refresh(self, new: Token) -> Token:
        """The token that replaces this one after a refresh answered ``new``.

        Rotation: a new refresh token replaces the old; when none is returned the
        old one is kept. The grant's ``company_id`` is carried over.
        """
        return replace(
            new,
            refresh_token=new.refresh_token or self.refresh_token,
            company_id=new.company_id or self.company_id,
            granted_company_id=new.granted_company_id or self.granted_company_id,
            id_token=new.id_token or self.id_token,
            id_token_claims=new.id_token_claims or self.id_token_claims,
            scopes=new.scopes or self.scopes,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``Token.from_dict`` reads it back."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scopes": list(self.scopes),
            "id_token": self.id_token,
            "id_token_claims": dict(self.id_token_claims),
            "company_id": self.company_id,
            "issued_at": self.issued_at,
            "granted_company_id": self.granted_company_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        """Read a dict written by ``to_dict``; raises ``InvalidValueError`` if it is not one.

        >>> Token.from_dict({"token_type": "Bearer"})
        Traceback (most recent call last):
        whop_oauth._errors.InvalidValueError: not a serialised Token: no access_token
        """
        access_token = data.get("access_token") if isinstance(data, Mapping) else None
        if not isinstance(access_token, str) or not access_token:
            raise InvalidValueError("not a serialised Token: no access_token")
        try:
            expires_at = data.get("expires_at")
            return cls(
                access_token=access_token,
                token_type=str(data.get("token_type") or "Bearer"),
                expires_at=None if expires_at is None else float(expires_at),
                refresh_token=data.get("refresh_token") or None,
                scopes=tuple(str(s) for s in data.get("scopes") or ()),
                id_token=data.get("id_token") or None,
                id_token_claims=dict(data.get("id_token_claims") or {}),
                company_id=data.get("company_id") or None,
                issued_at=float(data.get("issued_at") or time.time()),
                granted_company_id=data.get("granted_company_id") or None,
            )
        except (TypeError, ValueError) as exc:  # float("x"), dict(5), a str's iteration...
            raise InvalidValueError(f"not a serialised Token: {type(exc).__name__}") from None
