"""Listing the users a background job can act for: ``TokenManager.users(tenant=...)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError
from ._token import DEFAULT_TENANT, TokenKey

if TYPE_CHECKING:
    from .stores._base import TokenStore

__all__ = ["UserListing"]


class UserListing:
    """The listing half of ``TokenManager`` (a mixin: it uses the manager's store)."""

    if TYPE_CHECKING:
        store: TokenStore

        def key(self, *, user: str, tenant: str = DEFAULT_TENANT) -> TokenKey: ...

    async def users(
        self, *, tenant: str = DEFAULT_TENANT, page_size: int = 500
    ) -> AsyncIterator[str]:
        """The ids of the users with a grant stored for ``tenant``, for this client.

        Sorted, read ``page_size`` keys at a time from the store's ``grant_keys``;
        no token is read or decrypted. A grant the provider has since revoked is
        listed until a refresh finds out (``SignInRequired``) and deletes it.

        ```python
        async for user in manager.users(tenant="biz_123"):
            token = await manager.access_token(user=user, tenant="biz_123")
        ```
        """
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConfigurationError("page_size must be a positive int")
        grant_keys: Any = getattr(self.store, "grant_keys", None)
        if grant_keys is None:
            raise ConfigurationError(
                f"{type(self.store).__name__} cannot list its grants (it has no grant_keys)"
            )
        mine = self.key(user="-", tenant=tenant)  # checks the tenant; this client's ids
        after: TokenKey | None = None
        while True:
            page: list[TokenKey] = await grant_keys(tenant, after=after, limit=page_size)
            for key in page:
                if (key.issuer, key.client_id) == (mine.issuer, mine.client_id):
                    yield key.user
            if len(page) < page_size:
                return
            after = page[-1]
