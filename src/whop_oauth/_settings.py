"""Configuration from ``WHOP_*`` environment variables.

==========================  =====================================================
``WHOP_CLIENT_ID``          the app's client id (``app_...``)
``WHOP_CLIENT_SECRET``      unset → a public client (PKCE only)
``WHOP_REDIRECT_URI``       default ``http://127.0.0.1:8000/auth/callback``
``WHOP_ISSUER``             unset → the Whop preset; set → discovery from that issuer
``WHOP_SCOPES``             default ``openid profile email``
``WHOP_TOKEN_STORE``        default ``sqlite:///whop_oauth_tokens.db``; memory, redis, postgresql
``WHOP_SESSION_SECRETS``    comma-separated cookie signing keys, first is current
``WHOP_ENCRYPTION_KEYS``    comma-separated token encryption keys, first is current
==========================  =====================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from starlette.datastructures import Secret

from ._errors import ConfigurationError
from ._http import check_url
from ._metadata import WHOP, WHOP_SANDBOX, ProviderMetadata

if TYPE_CHECKING:
    from ._client import OAuthClient
    from .stores import TokenStore

__all__ = ["DEFAULT_REDIRECT_URI", "DEFAULT_SCOPES", "DEFAULT_TOKEN_STORE", "Settings"]

DEFAULT_REDIRECT_URI = "http://127.0.0.1:8000/auth/callback"
DEFAULT_SCOPES = "openid profile email"
#: Relative to the working directory of the process.
DEFAULT_TOKEN_STORE = "sqlite:///whop_oauth_tokens.db"  # noqa: S105 - a URL, no password
_STORE_SCHEMES = ("memory", "sqlite", "redis", "rediss", "postgresql", "postgres")
_PRESETS = {WHOP.issuer: WHOP, WHOP_SANDBOX.issuer: WHOP_SANDBOX}
_MIN_SESSION_SECRET = 32


def _check_url(name: str, value: str, *, allow_query: bool) -> str:
    check_url(value, name)  # https except on loopback, no fragment
    if urlsplit(value).query and not allow_query:
        raise ConfigurationError(f"{name} must not have a query")
    return value


def _secret_list(environ: Mapping[str, str], name: str) -> tuple[Secret, ...]:
    items = [item.strip() for item in environ.get(name, "").split(",")]
    return tuple(Secret(item) for item in items if item)


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything needed to sign users in, usually read with ``Settings.from_env()``.

    Secrets are ``starlette.datastructures.Secret`` values: their repr is masked,
    ``str(secret)`` gives the value. Empty tuples mean "not configured".

    >>> settings = Settings.from_env({"WHOP_CLIENT_ID": "app_123"})
    >>> settings.client_id, settings.is_public_client
    ('app_123', True)
    """

    client_id: str | None = None
    client_secret: Secret | None = None
    redirect_uri: str = DEFAULT_REDIRECT_URI
    issuer: str | None = None
    scopes: str = DEFAULT_SCOPES
    #: A URL that may hold a password (``redis://:pw@host``), hence a Secret.
    token_store: Secret = Secret(DEFAULT_TOKEN_STORE)  # noqa: RUF009 - immutable value
    session_secrets: tuple[Secret, ...] = ()
    encryption_keys: tuple[Secret, ...] = ()

    def __post_init__(self) -> None:
        client_id = self.client_id
        if client_id is not None and (not client_id or any(c.isspace() for c in client_id)):
            raise ConfigurationError("WHOP_CLIENT_ID must be a non-empty id without spaces")
        _check_url("WHOP_REDIRECT_URI", self.redirect_uri, allow_query=True)
        if self.issuer is not None:
            _check_url("WHOP_ISSUER", self.issuer, allow_query=False)
        if not self.scopes.split():
            raise ConfigurationError("WHOP_SCOPES must name at least one scope")
        scheme = urlsplit(str(self.token_store)).scheme
        if scheme not in _STORE_SCHEMES:
            raise ConfigurationError(
                f"WHOP_TOKEN_STORE must start with one of {', '.join(_STORE_SCHEMES)}://"
            )
        for position, secret in enumerate(self.session_secrets, 1):
            if len(str(secret)) < _MIN_SESSION_SECRET:
                raise ConfigurationError(
                    f"WHOP_SESSION_SECRETS key #{position} is shorter than "
                    f"{_MIN_SESSION_SECRET} characters"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ``WHOP_*`` variables of ``environ`` (default: ``os.environ``).

        Raises ``ConfigurationError`` naming the variable at fault (never its value).
        """
        env = os.environ if environ is None else environ
        secret = _optional(env, "WHOP_CLIENT_SECRET")
        return cls(
            client_id=_optional(env, "WHOP_CLIENT_ID"),
            client_secret=Secret(secret) if secret else None,
            redirect_uri=_optional(env, "WHOP_REDIRECT_URI") or DEFAULT_REDIRECT_URI,
            issuer=(_optional(env, "WHOP_ISSUER") or "").rstrip("/") or None,
            scopes=" ".join((_optional(env, "WHOP_SCOPES") or DEFAULT_SCOPES).split()),
            token_store=Secret(_optional(env, "WHOP_TOKEN_STORE") or DEFAULT_TOKEN_STORE),
            session_secrets=_secret_list(env, "WHOP_SESSION_SECRETS"),
            encryption_keys=_secret_list(env, "WHOP_ENCRYPTION_KEYS"),
        )

    @property
    def is_public_client(self) -> bool:
        return self.client_secret is None

    @property
    def provider(self) -> ProviderMetadata | str:
        """The Whop preset for Whop's own issuers (or none set), else the issuer URL."""
        if self.issuer is None:
            return WHOP
        return _PRESETS.get(self.issuer, self.issuer)

    def build_client(self, *, http_client: httpx.AsyncClient | None = None) -> OAuthClient:
        """An ``OAuthClient`` for these settings (it discovers a non-Whop issuer lazily)."""
        from ._client import OAuthClient

        if self.client_id is None:
            raise ConfigurationError("WHOP_CLIENT_ID is not set")
        return OAuthClient(
            client_id=self.client_id,
            client_secret=None if self.client_secret is None else str(self.client_secret),
            redirect_uri=self.redirect_uri,
            provider=self.provider,
            scope=self.scopes,
            http_client=http_client,
        )

    def open_store(self, **options: Any) -> TokenStore:
        """The store named by ``WHOP_TOKEN_STORE``, encrypted with ``WHOP_ENCRYPTION_KEYS``."""
        from .stores import open_store

        # None (not []) when unset: open_store then explains which stores need keys.
        keys = [str(key) for key in self.encryption_keys] or None
        return open_store(str(self.token_store), encryption_keys=keys, **options)
