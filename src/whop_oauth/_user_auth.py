"""``UserTokenAuth``: an httpx.Auth that sends a user's access token and refreshes on 401."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Protocol

import httpx

from ._errors import ConfigurationError
from ._origins import Origin, origin_or_none, parse_origin
from ._token import DEFAULT_TENANT, Token

__all__ = ["TokenSource", "UserTokenAuth"]


class TokenSource(Protocol):
    """What ``UserTokenAuth`` needs: a user's token, a refresh after a 401, and where the
    provider lives (``TokenManager`` is one)."""

    async def get_token(self, *, user: str, tenant: str = DEFAULT_TENANT) -> Token: ...

    async def refresh(
        self,
        *,
        user: str,
        tenant: str = DEFAULT_TENANT,
        rejected_access_token: str | None = None,
    ) -> Token: ...

    def provider_origins(self) -> frozenset[Origin]:
        """The origins the provider's own endpoints live at (issuer, API, userinfo)."""
        ...


class UserTokenAuth(httpx.Auth):
    """Attach a user's access token to requests made with ``httpx.AsyncClient``.

    The token is sent only to the provider's origins (its issuer and API base URL)
    and to ``allowed_origins``; a request anywhere else goes out without it. A 401
    triggers one refresh (shared with any concurrent one) and one retry. Request
    bodies are not read, so uploads stream; a streamed body that cannot be sent
    twice is not retried, and the 401 is returned after the refresh.

    ```python
    auth = manager.auth(user="user_1", tenant="biz_1")
    async with httpx.AsyncClient(base_url="https://api.whop.com/api/v1", auth=auth) as api:
        me = (await api.get("/me")).json()
    ```
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(
        self,
        source: TokenSource,
        *,
        user: str,
        tenant: str = DEFAULT_TENANT,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        if isinstance(allowed_origins, str):
            raise ConfigurationError("allowed_origins must be a list of URLs, not one string")
        self._source = source
        self._user = user
        self._tenant = tenant
        self._extra = frozenset(map(parse_origin, allowed_origins))

    def __repr__(self) -> str:
        return f"<UserTokenAuth tenant={self._tenant!r} user={self._user!r}>"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise ConfigurationError(
            "UserTokenAuth is async: use it with httpx.AsyncClient (a sync flow would block "
            "on the token store and the refresh lock)"
        )

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self.sends_token_to(request.url):
            yield request
            return
        token = await self._source.get_token(user=self._user, tenant=self._tenant)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        # Only a 401 from an origin we sent the token to says something about the token.
        if response.status_code != 401 or not self.sends_token_to(response.request.url):
            return
        fresh = await self._source.refresh(
            user=self._user, tenant=self._tenant, rejected_access_token=token.access_token
        )
        if not isinstance(request.stream, httpx.ByteStream):
            return  # a streamed body was consumed; the caller gets the 401, the next call works
        request.headers["Authorization"] = f"Bearer {fresh.access_token}"
        yield request

    def sends_token_to(self, url: httpx.URL | str) -> bool:
        """Whether a request to ``url`` would carry the token."""
        origin = origin_or_none(url)
        if origin is None:
            return False
        return origin in self._extra or origin in self._source.provider_origins()
