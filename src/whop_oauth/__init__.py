"""whop_oauth: Sign in with Whop, and act on behalf of Whop users, from async Python."""

from ._api_keys import APIKeyAuth as APIKeyAuth
from ._authorize import AuthorizationRequest as AuthorizationRequest
from ._client import OAuthClient as OAuthClient
from ._errors import (
    AuthorizationDenied as AuthorizationDenied,
)
from ._errors import (
    AuthorizationResponseError as AuthorizationResponseError,
)
from ._errors import (
    ConfigurationError as ConfigurationError,
)
from ._errors import (
    DecryptionError as DecryptionError,
)
from ._errors import (
    DiscoveryError as DiscoveryError,
)
from ._errors import (
    IdTokenError as IdTokenError,
)
from ._errors import (
    InvalidCallbackError as InvalidCallbackError,
)
from ._errors import (
    InvalidClientError as InvalidClientError,
)
from ._errors import (
    InvalidGrantError as InvalidGrantError,
)
from ._errors import (
    InvalidResponseError as InvalidResponseError,
)
from ._errors import (
    InvalidTokenKey as InvalidTokenKey,
)
from ._errors import (
    InvalidValueError as InvalidValueError,
)
from ._errors import (
    IssuerMismatchError as IssuerMismatchError,
)
from ._errors import (
    LockLost as LockLost,
)
from ._errors import (
    LockTimeout as LockTimeout,
)
from ._errors import (
    MiddlewareNotInstalled as MiddlewareNotInstalled,
)
from ._errors import (
    NoGrantError as NoGrantError,
)
from ._errors import (
    ProviderError as ProviderError,
)
from ._errors import (
    ProviderResponseError as ProviderResponseError,
)
from ._errors import (
    RateLimitedError as RateLimitedError,
)
from ._errors import (
    ServerUnavailableError as ServerUnavailableError,
)
from ._errors import (
    SignInRequired as SignInRequired,
)
from ._errors import (
    StaleWriteError as StaleWriteError,
)
from ._errors import (
    StateMismatchError as StateMismatchError,
)
from ._errors import (
    TenantNotConfirmed as TenantNotConfirmed,
)
from ._errors import (
    TokenStoreError as TokenStoreError,
)
from ._errors import (
    TransportError as TransportError,
)
from ._errors import (
    WhopOAuthError as WhopOAuthError,
)
from ._hooks import RefreshFailure as RefreshFailure
from ._hooks import RefreshHooks as RefreshHooks
from ._hooks import RefreshInfo as RefreshInfo
from ._license import LicenseResult as LicenseResult
from ._license import validate_license as validate_license
from ._manager import TokenManager as TokenManager
from ._metadata import (
    WHOP as WHOP,
)
from ._metadata import (
    WHOP_SANDBOX as WHOP_SANDBOX,
)
from ._metadata import (
    ProviderMetadata as ProviderMetadata,
)
from ._metadata import (
    whop_metadata as whop_metadata,
)
from ._registration import register_client as register_client
from ._settings import Settings as Settings
from ._tenants import prove_tenant as prove_tenant
from ._token import DEFAULT_TENANT as DEFAULT_TENANT
from ._token import Token as Token
from ._token import TokenKey as TokenKey
from ._user_auth import UserTokenAuth as UserTokenAuth
from .stores import generate_encryption_key as generate_encryption_key
from .stores import open_store as open_store

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TENANT",
    "WHOP",
    "WHOP_SANDBOX",
    "APIKeyAuth",
    "AuthorizationDenied",
    "AuthorizationRequest",
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
    "LicenseResult",
    "LockLost",
    "LockTimeout",
    "MiddlewareNotInstalled",
    "NoGrantError",
    "OAuthClient",
    "ProviderError",
    "ProviderMetadata",
    "ProviderResponseError",
    "RateLimitedError",
    "RefreshFailure",
    "RefreshHooks",
    "RefreshInfo",
    "ServerUnavailableError",
    "Settings",
    "SignInRequired",
    "StaleWriteError",
    "StateMismatchError",
    "TenantNotConfirmed",
    "Token",
    "TokenKey",
    "TokenManager",
    "TokenStoreError",
    "TransportError",
    "UserTokenAuth",
    "WhopOAuthError",
    "generate_encryption_key",
    "open_store",
    "prove_tenant",
    "register_client",
    "validate_license",
    "whop_metadata",
]
