"""Accessors for endpoints: the signed-in user, and an HTTP client acting as them."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import httpx
from starlette.requests import HTTPConnection

from .._bounded import remember
from .._errors import ConfigurationError, SignInRequired
from ._backend import WhopUser, user_of
from ._state import auth_state

if TYPE_CHECKING:
    from .._metadata import ProviderMetadata
    from .._user_auth import UserTokenAuth
    from ._site import Site

__all__ = ["UserHTTPClient", "csrf_token", "current_user", "sign_in_url", "user_http_client"]


def current_user(request: HTTPConnection) -> WhopUser | None:
    """The signed-in user, or ``None``; raises ``MiddlewareNotInstalled`` without the middleware.

    Works as a FastAPI dependency too: ``user = Depends(current_user)``.

    >>> user = current_user(request)  # doctest: +SKIP
    >>> user.email if user else "anonymous"  # doctest: +SKIP
    """
    session = auth_state(request).session
    return None if session is None else user_of(session)


def csrf_token(request: HTTPConnection) -> str:
    """The value for the sign-out form's hidden ``csrf_token`` field ("" when signed out).

    >>> f'<input type="hidden" name="csrf_token" value="{csrf_token(request)}">'  # doctest: +SKIP
    """
    session = auth_state(request).session
    return "" if session is None else session.session_id


def sign_in_url(request: HTTPConnection) -> str:
    """The login URL that brings the user back where they were going.

    In an ``error_handler``, that is where the failed sign-in was going (the login's
    ``next``, or the return path its flow carried to the callback); elsewhere, the
    current page. For a "Try again" link:

    >>> f'<a href="{sign_in_url(request)}">Try again</a>'  # doctest: +SKIP
    """
    state = auth_state(request)
    if state.return_path is not None:
        return state.site.login_url(request, state.return_path)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return state.site.login_url(request, here)


def user_http_client(request: HTTPConnection) -> UserHTTPClient:
    """An HTTP client that calls the provider as the signed-in user.

    Every request gets ``Authorization: Bearer <access token>``, refreshed when due
    and once more after a 401, through the app's one shared ``httpx.AsyncClient``.
    Relative URLs are joined to the provider's API base (``https://api.whop.com/api/v1``).
    Raises ``SignInRequired`` when nobody is signed in (the middleware turns it into a
    redirect to the login page) and ``MiddlewareNotInstalled`` without the middleware.

    >>> response = await user_http_client(request).get("/accounts/me")  # doctest: +SKIP
    """
    state = auth_state(request)
    session = state.session
    if session is None:
        raise SignInRequired("nobody is signed in")
    site = state.site
    known = site.clients.get(session.session_id)
    if known is not None and known[0] is session:
        return cast(UserHTTPClient, known[1])
    client = UserHTTPClient(site, site.manager.auth(user=session.user, tenant=session.tenant))
    with _adding:
        remember(site.clients, session.session_id, (session, client), limit=CLIENTS_KEPT)
    return client


#: How many sessions' clients a site remembers (``Site.clients``); the oldest goes first.
#: A ``UserHTTPClient`` holds nothing between requests, so every request of a session (the
#: middleware hands each one the same ``SessionData`` while its cookie is unchanged) can
#: share one. Insertion order = age (an entry replaced for another session keeps its place).
CLIENTS_KEPT = 4096
#: How many API paths a site keeps parsed (``Site.api_urls``); the oldest goes first. A
#: path with a query string is parsed every time and never kept (queries are where APIs
#: take keys and one-off values). The path itself is kept: it must not hold a secret
#: (httpx's own INFO log line writes the whole URL of every request anyway).
URLS_KEPT = 256
_adding = threading.Lock()  # plain endpoints run in threads; a hit takes no lock


class UserHTTPClient:
    """``httpx.AsyncClient``'s request methods, bound to one user's token.

    The token is only ever sent to the provider's own origins (its issuer and API
    hosts); any other URL raises ``ConfigurationError`` before sending.
    """

    __slots__ = ("_auth", "_site")

    def __init__(self, site: Site, user_auth: UserTokenAuth) -> None:
        self._site = site
        self._auth = user_auth

    def __repr__(self) -> str:
        return f"<UserHTTPClient for {self._site.client.issuer}>"

    @property
    def auth(self) -> UserTokenAuth:
        """The ``httpx.Auth`` this client sends with (read-only: every request of the
        session shares the client)."""
        return self._auth

    def _url(self, url: httpx.URL | str, metadata: ProviderMetadata) -> httpx.URL:
        """Where a request for ``url`` goes: a path is joined to the provider's API base."""
        if isinstance(url, str) and url.startswith("/") and not url.startswith("//"):
            # A path, the usual call. Joined to the API base, it keeps the base's origin
            # (a path cannot change the authority), one of the provider's. Parsed once per
            # metadata document: httpx parses a URL string on every call otherwise.
            urls = self._site.api_urls
            known = urls.get(url)
            if known is not None and known[0] is metadata:
                return known[1]
            parsed = httpx.URL(_api_base(metadata) + url)
            if "?" not in url:
                with _adding:
                    remember(urls, url, (metadata, parsed), limit=URLS_KEPT)
            return parsed
        target = httpx.URL(url)
        if target.is_relative_url:
            target = httpx.URL(_api_base(metadata) + "/" + str(url).lstrip("/"))
        if not self._auth.sends_token_to(target):
            # Failing loudly beats sending the request without the token it needs.
            raise ConfigurationError("the user's token is only sent to the provider's origins")
        return target

    async def request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        """Like ``httpx.AsyncClient.request`` (``auth=`` is this user's)."""
        client = self._site.client
        # Every API call comes here: no coroutine of ours while the metadata is fresh.
        target = self._url(url, client.fresh_metadata() or await client.load_metadata())
        return await self._site.http.get().request(method, target, auth=self._auth, **kwargs)

    @asynccontextmanager
    async def stream(
        self, method: str, url: httpx.URL | str, **kwargs: Any
    ) -> AsyncIterator[httpx.Response]:
        """Like ``httpx.AsyncClient.stream``: ``async with client.stream(...) as response``."""
        client = self._site.client
        target = self._url(url, client.fresh_metadata() or await client.load_metadata())
        http = self._site.http.get()
        async with http.stream(method, target, auth=self._auth, **kwargs) as response:
            yield response

    async def get(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)


def _api_base(metadata: ProviderMetadata) -> str:
    """The provider's API base URL without its trailing slash."""
    if metadata.api_base_url is None:
        raise ConfigurationError("the provider has no API base URL: use absolute URLs")
    return metadata.api_base_url.rstrip("/")
