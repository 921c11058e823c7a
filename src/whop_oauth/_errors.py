"""Exceptions raised by whop_oauth.

Every error the library raises derives from ``WhopOAuthError``::

    WhopOAuthError
    ├── ConfigurationError            (also RuntimeError: a caller mistake)
    │   └── MiddlewareNotInstalled
    ├── InvalidValueError             (also ValueError: a Token, key or flow that is not one)
    │   └── InvalidTokenKey           (an empty or unencodable tenant, user, issuer or client id)
    ├── AuthorizationResponseError    (the front-channel callback was refused)
    │   ├── AuthorizationDenied       (error=... on the redirect, e.g. access_denied)
    │   ├── StateMismatchError        (missing, wrong, expired or replayed state)
    │   ├── IssuerMismatchError       (RFC 9207 ``iss`` missing or wrong)
    │   └── InvalidCallbackError      (missing code, duplicated or forbidden parameters)
    ├── TransportError                (timeout, connection refused or reset)
    ├── ProviderResponseError         (the provider's answer is the error; kept as ``response``)
    │   ├── ProviderError             (an OAuth error body from an endpoint)
    │   │   ├── InvalidClientError
    │   │   ├── RateLimitedError      (429; ``retry_after`` in seconds)
    │   │   └── InvalidGrantError     (also SignInRequired)
    │   ├── ServerUnavailableError    (5xx without an OAuth error body)
    │   └── InvalidResponseError      (not JSON, missing fields, wrong types, too large)
    ├── IdTokenError                  (signature, iss, aud, exp, nonce ...)
    ├── DiscoveryError                (metadata document unusable or for another issuer)
    ├── TenantNotConfirmed            (nothing the provider said proves the sign-in's tenant)
    ├── SignInRequired                (the user has to go through the flow again)
    │   ├── NoGrantError              (nothing stored for this tenant and user)
    │   └── InvalidGrantError
    └── TokenStoreError
        ├── DecryptionError           (no configured key opens a stored value)
        ├── StaleWriteError           (a conditional or fenced write lost to a newer one)
        ├── LockTimeout               (another process held the refresh lock too long)
        └── LockLost                  (the lock's lease was taken over while it was held)

A class that also derives from a built-in says so ("also ValueError"), so that
``except ValueError`` written for those cases keeps working; ``tests/test_error_tree.py``
checks this drawing against the classes.

Messages never contain tokens, codes, verifiers, secrets or cookie values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ._token import Token

__all__ = [
    "AuthorizationDenied",
    "AuthorizationResponseError",
    "ConfigurationError",
    "DecryptionError",
    "DiscoveryError",
    "IdTokenError",
    "InvalidCallbackError",
    "InvalidClientError",
    "InvalidGrantError",
    "InvalidResponseError",
    "InvalidTokenKey",
    "InvalidValueError",
    "IssuerMismatchError",
    "LockLost",
    "LockTimeout",
    "MiddlewareNotInstalled",
    "NoGrantError",
    "ProviderError",
    "ProviderResponseError",
    "RateLimitedError",
    "ServerUnavailableError",
    "SignInRequired",
    "StaleWriteError",
    "StateMismatchError",
    "TenantNotConfirmed",
    "TokenStoreError",
    "TransportError",
    "WhopOAuthError",
]


class WhopOAuthError(Exception):
    """Root of every exception raised by whop_oauth."""


class ConfigurationError(WhopOAuthError, RuntimeError):
    """The library was configured or called in a way that cannot work."""


class MiddlewareNotInstalled(ConfigurationError):
    """A request helper was used on an app without the whop_oauth middleware."""


class InvalidValueError(WhopOAuthError, ValueError):
    """A ``Token``, ``TokenKey`` or ``AuthorizationRequest`` (or the dict it was saved as)
    with a missing or wrongly typed field."""


class InvalidTokenKey(InvalidValueError):
    """A tenant, user, issuer or client id that cannot name a stored grant."""


class AuthorizationResponseError(WhopOAuthError):
    """The authorization response (the redirect to the callback) was refused."""


class AuthorizationDenied(AuthorizationResponseError):
    """The provider redirected back with ``error=...`` (e.g. the user refused).

    ``error_description`` is provider-supplied, untrusted text: escape it before
    showing it in HTML.
    """

    def __init__(
        self,
        error: str,
        error_description: str | None = None,
        error_uri: str | None = None,
    ) -> None:
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri
        message = error if not error_description else f"{error}: {error_description}"
        super().__init__(message)


class StateMismatchError(AuthorizationResponseError):
    """The ``state`` is missing, unknown, expired, already used or not this browser's."""


class IssuerMismatchError(AuthorizationResponseError):
    """The RFC 9207 ``iss`` parameter is missing where required, or names another issuer."""


class InvalidCallbackError(AuthorizationResponseError):
    """The callback query is malformed: no code, a duplicated or forbidden parameter."""


class TransportError(WhopOAuthError):
    """The provider could not be reached, or did not answer in time."""


class ProviderResponseError(WhopOAuthError):
    """The provider answered, and the answer is the error.

    The answer is kept as ``response`` (keyword-only, ``None`` when the error was
    found outside an HTTP exchange); its body may hold provider text, never ours.
    """

    def __init__(self, message: str, *, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response

    @property
    def status_code(self) -> int | None:
        return None if self.response is None else self.response.status_code


class ProviderError(ProviderResponseError):
    """An endpoint answered with an OAuth error body (RFC 6749 §5.2).

    ``str(error)`` holds the error code and the provider's description, never
    request data.
    """

    def __init__(
        self,
        error: str,
        error_description: str | None = None,
        error_uri: str | None = None,
        *,
        response: httpx.Response | None = None,
    ) -> None:
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri
        status = f" (HTTP {response.status_code})" if response is not None else ""
        detail = f": {error_description}" if error_description else ""
        super().__init__(f"{error}{detail}{status}", response=response)


class InvalidClientError(ProviderError):
    """Client authentication failed (wrong secret, or a key without the permission)."""


class RateLimitedError(ProviderError):
    """The provider answered 429; ``retry_after`` is the delay it asked for, if any."""

    def __init__(
        self,
        error: str = "rate_limit_exceeded",
        error_description: str | None = None,
        error_uri: str | None = None,
        *,
        response: httpx.Response | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(error, error_description, error_uri, response=response)
        self.retry_after = retry_after


class ServerUnavailableError(ProviderResponseError):
    """The provider answered 5xx (or an unexpected status) without an OAuth error body."""


class InvalidResponseError(ProviderResponseError):
    """A provider response could not be understood (not JSON, missing fields, ...)."""


class IdTokenError(WhopOAuthError):
    """The ``id_token`` failed validation (signature, iss, aud, exp, iat or nonce).

    ``rotated`` is set when a refresh was answered (so the refresh token it sent is
    spent) with an id_token that cannot be accepted: the grant it carries must be
    revoked, not stored. It never appears in the message.
    """

    def __init__(self, message: str, *, rotated: Token | None = None) -> None:
        super().__init__(message)
        self.rotated = rotated


class DiscoveryError(WhopOAuthError):
    """The provider metadata document is unusable or belongs to another issuer."""


class TenantNotConfirmed(WhopOAuthError):
    """A sign-in asked for a company (tenant) that the provider did not confirm.

    ``company_id`` on a login URL is user input: the user can edit or drop it on
    the authorize page. The tenant a sign-in is stored under must come from the
    provider (a field of its token response, an id_token claim) or from the app's
    ``tenant_verifier``; when neither names one, the sign-in fails with this.

    >>> raise TenantNotConfirmed("Whop did not confirm company biz_1")  # doctest: +SKIP
    """


class SignInRequired(WhopOAuthError):
    """There is no usable grant: the user has to sign in again."""


class NoGrantError(SignInRequired):
    """Nothing is stored for this tenant and user."""


class InvalidGrantError(ProviderError, SignInRequired):
    """The refresh token (or code) was rejected with ``invalid_grant``: sign in again."""


class TokenStoreError(WhopOAuthError):
    """The token store failed."""


class DecryptionError(TokenStoreError):
    """A stored value could not be decrypted with any configured key."""


class LockTimeout(TokenStoreError):
    """The refresh lock for a key could not be taken in time."""


class LockLost(TokenStoreError):
    """The refresh lock's lease ran out or was taken over while its holder worked.

    Raised before a side effect, never after: the holder sent nothing.
    """


class StaleWriteError(TokenStoreError):
    """A conditional write found a newer version stored (another process won)."""

    def __init__(
        self, message: str = "the grant changed since it was read (another writer won)"
    ) -> None:
        super().__init__(message)
