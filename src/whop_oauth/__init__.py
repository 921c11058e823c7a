"""whop_oauth: Sign in with Whop, and act on behalf of Whop users, from async Python."""

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
    IssuerMismatchError as IssuerMismatchError,
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
    TokenStoreError as TokenStoreError,
)
from ._errors import (
    TransportError as TransportError,
)
from ._errors import (
    WhopOAuthError as WhopOAuthError,
)
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
from ._token import DEFAULT_TENANT as DEFAULT_TENANT
from ._token import Token as Token
from ._token import TokenKey as TokenKey

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TENANT",
    "WHOP",
    "WHOP_SANDBOX",
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
    "IssuerMismatchError",
    "LockTimeout",
    "MiddlewareNotInstalled",
    "NoGrantError",
    "ProviderError",
    "ProviderMetadata",
    "RateLimitedError",
    "ServerUnavailableError",
    "SignInRequired",
    "StaleWriteError",
    "StateMismatchError",
    "Token",
    "TokenKey",
    "TokenStoreError",
    "TransportError",
    "WhopOAuthError",
    "whop_metadata",
]
