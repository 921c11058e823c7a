"""What the routes, the middleware and the request helpers share, made once by ``WhopAuth``.

A leaf of the package: the parts receive a ``Site`` instead of reaching into
``WhopAuth``, so no module here imports ``_auth`` (nor each other in a circle).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .._errors import WhopOAuthError
from .._metadata import ProviderMetadata
from .._no_cookies import new_http_client, without_cookies
from .._reasons import describe
from .._tenants import TenantVerifier
from .._token import TokenKey
from ._cookies import SessionData
from ._pages import NO_CACHE_HEADERS, error_page, status_for
from ._policy import CookiePolicy

if TYPE_CHECKING:
    from .._client import OAuthClient
    from .._manager import TokenManager

__all__ = ["ErrorHandler", "Paths", "SharedHTTPClient", "Site"]

logger = logging.getLogger("whop_oauth.starlette")

#: ``(request, error, suggested_status) -> response`` (sync or async) for failed sign-ins.
ErrorHandler = Callable[[Request, WhopOAuthError, int], Response | Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Paths:
    """Where the routes live, and where the user goes after signing out."""

    login: str
    callback: str
    logout: str
    home: str
    logout_everywhere: str | None = None
    #: Where sign-out sends the browser (``home`` unless the app says otherwise).
    after_logout: str | None = None


class SharedHTTPClient:
    """The one pooled client every user's API calls share (made on first use).

    It keeps no cookies: a cookie the provider sets on one user's answer must not
    ride on the next user's request. An injected client is used through a view
    that shares its connection pool but neither sends nor keeps its cookies.
    """

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._client = client
        self._owned = client is None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = new_http_client(timeout=httpx.Timeout(10.0), follow_redirects=False)
        return without_cookies(self._client)

    async def aclose(self) -> None:
        """Close the client if this object made it (an injected one is its owner's)."""
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass(frozen=True, slots=True, eq=False)
class Site:
    """The OAuth client, the token manager and the policies of one ``WhopAuth``."""

    client: OAuthClient
    manager: TokenManager
    cookies: CookiePolicy
    paths: Paths
    #: Origins this site is reached at: return URLs and logout Origin headers must match.
    origins: frozenset[str]
    http: SharedHTTPClient
    tenant_verifier: TenantVerifier | None = None
    error_handler: ErrorHandler | None = None
    #: How pages name the provider ("Whop", "Acme ID"...).
    provider_name: str = "Whop"
    #: Called with the ``TokenKey`` (tenant, user, issuer, client id) after each sign-in.
    on_sign_in: Callable[[TokenKey], object] | None = None
    #: ``user_http_client``'s memory: session id -> (the session, its client). Each site
    #: has its own (``dataclasses.replace`` makes a new one), and it goes with the site.
    clients: dict[str, tuple[SessionData, object]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: ``UserHTTPClient``'s API URLs, each parsed once: path -> (the metadata whose API
    #: base it was joined to, the URL).
    api_urls: dict[str, tuple[ProviderMetadata, httpx.URL]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def login_url(self, conn: HTTPConnection, return_path: str | None = None) -> str:
        """The login route's URL, with ``next=return_path`` when there is one."""
        url = conn.scope.get("root_path", "") + self.paths.login
        return f"{url}?{urlencode({'next': return_path})}" if return_path else url

    async def error_response(
        self, request: Request, error: WhopOAuthError, *, return_path: str | None = None
    ) -> Response:
        """The answer to a failed sign-in: the app's ``error_handler`` or the default page.

        ``return_path`` is where the sign-in was going: "Try again" goes there too.
        """
        status = status_for(error)
        # WARNING whatever the cause: a newcomer's misconfiguration must show in the log.
        logger.warning("sign-in failed: %s (HTTP %d)", describe(error), status)
        response: Response
        if self.error_handler is None:
            login_url = self.login_url(request, return_path)
            response = error_page(
                error,
                status,
                login_url=login_url,
                home_url=self.paths.home,
                provider=self.provider_name,
            )
        else:
            result = self.error_handler(request, error, status)
            response = await result if inspect.isawaitable(result) else result
        response.headers.update(NO_CACHE_HEADERS)
        return response

    def sign_in_required_response(self, conn: HTTPConnection) -> Response:
        """A browser page load goes to the login page and back; an API call gets a 401."""
        wants_html = "text/html" in conn.headers.get("accept", "")
        if conn.scope.get("method") in ("GET", "HEAD") and wants_html:
            here = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
            root = conn.scope.get("root_path", "")
            target = f"{root}{self.paths.login}?{urlencode({'next': here})}"
            return RedirectResponse(target, status_code=303, headers=NO_CACHE_HEADERS)
        return JSONResponse(
            {"error": "sign_in_required"},
            status_code=401,
            headers={"Cache-Control": "no-store"},
        )
