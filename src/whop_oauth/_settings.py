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
``WHOP_TOKEN_ENDPOINT_AUTH_METHOD``  ``client_secret_post``, ``client_secret_basic``
                            or ``none``; unset → basic with a secret, none without
``WHOP_API_BASE_URL``       the provider's REST API base (Whop's presets: ``/api/v1``)
``WHOP_PROVIDER_NAME``      how pages name the provider; unset → "Whop" for Whop, else
                            the issuer's host
==========================  =====================================================
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast, get_args
from urllib.parse import urlsplit

import httpx
from starlette.datastructures import Secret

from ._client_auth import AuthMethod
from ._errors import ConfigurationError
from ._metadata import WHOP, WHOP_SANDBOX, ProviderMetadata
from ._scopes import split_scopes
from ._urls import check_url

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
#: What to run to make a value, named in the error when one is missing.
_HOW_TO_MAKE = {
    "WHOP_SESSION_SECRETS": 'python -c "import secrets; print(secrets.token_urlsafe(32))"',
    "WHOP_ENCRYPTION_KEYS": (
        'python -c "import whop_oauth; print(whop_oauth.generate_encryption_key())"'
    ),
}


def _missing(name: str) -> ConfigurationError:
    how = _HOW_TO_MAKE.get(name)
    hint = f"; make one with: {how}" if how else ""
    return ConfigurationError(f"{name} is not set{hint}")


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
    #: How the client authenticates at the token endpoint (None: from the secret).
    token_endpoint_auth_method: AuthMethod | None = None
    #: The provider's REST API base, for relative URLs of users' calls.
    api_base_url: str | None = None
    #: How pages name the provider (None: "Whop" for Whop, else the issuer's host).
    provider_name: str | None = None

    def __post_init__(self) -> None:
        client_id = self.client_id
        if client_id is not None and (not client_id or any(c.isspace() for c in client_id)):
            raise ConfigurationError("WHOP_CLIENT_ID must be a non-empty id without spaces")
        _check_url("WHOP_REDIRECT_URI", self.redirect_uri, allow_query=True)
        if self.issuer is not None:
            _check_url("WHOP_ISSUER", self.issuer, allow_query=False)
        if not split_scopes(self.scopes):
            raise ConfigurationError("WHOP_SCOPES must name at least one scope")
        scheme = urlsplit(str(self.token_store)).scheme
        if scheme not in _STORE_SCHEMES:
            raise ConfigurationError(
                f"WHOP_TOKEN_STORE must start with one of {', '.join(_STORE_SCHEMES)}://"
            )
        method = self.token_endpoint_auth_method
        if method is not None and method not in get_args(AuthMethod):
            raise ConfigurationError(
                f"WHOP_TOKEN_ENDPOINT_AUTH_METHOD must be one of {', '.join(get_args(AuthMethod))}"
            )
        if self.api_base_url is not None:
            _check_url("WHOP_API_BASE_URL", self.api_base_url, allow_query=False)
        self._check_encryption_keys()
        for position, secret in enumerate(self.session_secrets, 1):
            if len(str(secret)) < _MIN_SESSION_SECRET:
                raise ConfigurationError(
                    f"WHOP_SESSION_SECRETS key #{position} is shorter than "
                    f"{_MIN_SESSION_SECRET} characters"
                )

    def _check_encryption_keys(self) -> None:
        from .stores._crypto import TokenCipher

        for position, key in enumerate(self.encryption_keys, 1):
            try:
                TokenCipher([str(key)])
            except ConfigurationError:
                raise ConfigurationError(
                    f"WHOP_ENCRYPTION_KEYS key #{position} is not 32 bytes of URL-safe "
                    f"base64; make one with: {_HOW_TO_MAKE['WHOP_ENCRYPTION_KEYS']}"
                ) from None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require: Collection[str] = ()
    ) -> Settings:
        """Read the ``WHOP_*`` variables of ``environ`` (default: ``os.environ``).

        Raises ``ConfigurationError`` naming the variable at fault (never its value),
        also for each variable in ``require`` that is unset or empty.

        >>> Settings.from_env({}, require=["WHOP_SESSION_SECRETS"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        whop_oauth._errors.ConfigurationError: WHOP_SESSION_SECRETS is not set; make one with: ...
        """
        env = os.environ if environ is None else environ
        for name in require:
            if not name.startswith("WHOP_"):
                raise ConfigurationError(f"require names WHOP_* variables, not {name!r}")
            if not env.get(name, "").replace(",", "").strip():
                raise _missing(name)
        secret = _optional(env, "WHOP_CLIENT_SECRET")
        return cls(
            client_id=_optional(env, "WHOP_CLIENT_ID"),
            client_secret=Secret(secret) if secret else None,
            redirect_uri=_optional(env, "WHOP_REDIRECT_URI") or DEFAULT_REDIRECT_URI,
            issuer=(_optional(env, "WHOP_ISSUER") or "").rstrip("/") or None,
            scopes=" ".join(split_scopes(_optional(env, "WHOP_SCOPES") or DEFAULT_SCOPES)),
            token_store=Secret(_optional(env, "WHOP_TOKEN_STORE") or DEFAULT_TOKEN_STORE),
            session_secrets=_secret_list(env, "WHOP_SESSION_SECRETS"),
            encryption_keys=_secret_list(env, "WHOP_ENCRYPTION_KEYS"),
            # Checked against AuthMethod's values in __post_init__.
            token_endpoint_auth_method=cast(
                "AuthMethod | None", _optional(env, "WHOP_TOKEN_ENDPOINT_AUTH_METHOD")
            ),
            api_base_url=_optional(env, "WHOP_API_BASE_URL"),
            provider_name=_optional(env, "WHOP_PROVIDER_NAME"),
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
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            api_base_url=self.api_base_url,
        )

    def open_store(self, **options: Any) -> TokenStore:
        """The store named by ``WHOP_TOKEN_STORE``, encrypted with ``WHOP_ENCRYPTION_KEYS``."""
        from .stores import open_store

        keys = [str(key) for key in self.encryption_keys] or None
        if keys is None and not str(self.token_store).startswith("memory:"):
            scheme = urlsplit(str(self.token_store)).scheme
            raise ConfigurationError(
                f"WHOP_ENCRYPTION_KEYS is not set: the {scheme} store of WHOP_TOKEN_STORE "
                f"keeps tokens encrypted; make a key with: {_HOW_TO_MAKE['WHOP_ENCRYPTION_KEYS']}"
            )
        return open_store(str(self.token_store), encryption_keys=keys, **options)
