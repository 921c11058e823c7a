"""Token stores: where grants live between requests, and the lock that guards refresh."""

from ._base import StoredToken as StoredToken
from ._base import TokenStore as TokenStore

__all__ = ["StoredToken", "TokenStore"]
