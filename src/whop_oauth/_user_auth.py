"""``UserTokenAuth``: an httpx.Auth that sends a user's access token and refreshes on 401."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import TYPE_CHECKING

import httpx

from ._errors import ConfigurationError
from ._token import DEFAULT_TENANT

if TYPE_CHECKING:
    from ._manager import TokenManager

__all__ = ["UserTokenAuth"]

Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL | str) -> Origin:
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL:
        raise ConfigurationError("an allowed origin must be an absolute http(s) URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise ConfigurationError("an allowed origin must be an absolute http(s) URL")
    return (parsed.scheme, parsed.host, parsed.port or _DEFAULT_PORTS[parsed.scheme])


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
        manager: TokenManager,
        *,
        user: str,
        tenant: str = DEFAULT_TENANT,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        if isinstance(allowed_origins, str):
            raise ConfigurationError("allowed_origins must be a list of URLs, not one string")
        self._manager = manager
        self._user = user
        self._tenant = tenant
        self._extra = frozenset(_origin(url) for url in allowed_origins)
        self._provider: frozenset[Origin] | None = None

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
        token = await self._manager.get_token(user=self._user, tenant=self._tenant)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        # Only a 401 from an origin we sent the token to says something about the token.
        if response.status_code != 401 or not self.sends_token_to(response.request.url):
            return
        fresh = await self._manager.refresh(
            user=self._user, tenant=self._tenant, rejected_access_token=token.access_token
        )
        if not isinstance(request.stream, httpx.ByteStream):
            return  # a streamed body was consumed; the caller gets the 401, the next call works
        request.headers["Authorization"] = f"Bearer {fresh.access_token}"
        yield request

    def sends_token_to(self, url: httpx.URL | str) -> bool:
        """Whether a request to ``url`` would carry the token."""
        try:
            origin = _origin(url)
        except ConfigurationError:
            return False
        return origin in self._extra or origin in self._provider_origins()

    def _provider_origins(self) -> frozenset[Origin]:
        if self._provider is not None:
            return self._provider
        client = self._manager.client
        origins = {_origin(client.issuer)}
        try:
            metadata = getattr(client, "metadata", None)
        except ConfigurationError:  # metadata not discovered yet: ask again next time
            return frozenset(origins)
        # The API base, and userinfo, which may live on another host than the issuer
        # (Google's does): the metadata names them, so the token may go there.
        for name in ("api_base_url", "userinfo_endpoint"):
            url = getattr(metadata, name, None)
            if isinstance(url, str):
                origins.add(_origin(url))
        self._provider = frozenset(origins)
        return self._provider
