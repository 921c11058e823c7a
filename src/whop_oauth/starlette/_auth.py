"""``WhopAuth``: the one object an app creates to add "Sign in with Whop"."""

from __future__ import annotations

import inspect
import logging
import posixpath
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.datastructures import Secret
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .._errors import ConfigurationError, WhopOAuthError
from .._no_cookies import new_http_client, without_cookies
from .._tenants import TenantVerifier
from ._cookies import (
    CookieCodec,
    SessionData,
    cookie_header,
    flow_cookie_suffix,
)
from ._middleware import WhopAuthMiddleware
from ._pages import NO_CACHE_HEADERS, error_page, status_for
from ._redirects import origin_of
from ._routes import AuthEndpoints
from ._state import AuthState

if TYPE_CHECKING:
    from .._client import OAuthClient
    from .._manager import TokenManager

__all__ = ["ErrorHandler", "TenantVerifier", "WhopAuth"]

logger = logging.getLogger("whop_oauth.starlette")

#: ``(request, error, suggested_status) -> response`` (sync or async) for failed sign-ins.
ErrorHandler = Callable[[Request, WhopOAuthError, int], Response | Awaitable[Response]]

FLOW_MAX_AGE = 600
#: Sign-ins one browser may have in progress at once (tabs); the oldest gives way.
MAX_FLOWS = 5
SESSION_MAX_AGE = 14 * 24 * 3600


def _check_path(name: str, value: str) -> str:
    if not value.startswith("/") or value.startswith("//"):
        raise ConfigurationError(f"{name} must be a path starting with a single '/'")
    return value


class WhopAuth:
    """Sign in with Whop for a Starlette (or FastAPI) app: routes plus one middleware.

    ``secret_keys`` sign the cookies: the first signs, all verify (put a new key
    first to rotate). The login request's ``?company_id=biz_...`` asks for a
    company-scoped grant; the tenant the token is stored under is what the
    provider confirmed, or what ``tenant_verifier`` (``async (token) -> tenant``)
    returns (see ``whop_oauth.prove_tenant``).
    ``callback_path`` defaults to the path of the client's ``redirect_uri``;
    ``cookie_secure`` to whether that URI is https.

    >>> whop = WhopAuth(client, manager, secret_keys=[os.environ["SESSION_KEY"]])  # doctest: +SKIP
    >>> app = Starlette(routes=[*whop.routes, ...], middleware=[whop.middleware])  # doctest: +SKIP
    """

    def __init__(
        self,
        client: OAuthClient,
        manager: TokenManager,
        *,
        secret_keys: Sequence[str | Secret],
        tenant_verifier: TenantVerifier | None = None,
        login_path: str = "/auth/login",
        callback_path: str | None = None,
        logout_path: str = "/auth/logout",
        logout_everywhere_path: str | None = None,
        home_path: str = "/",
        error_handler: ErrorHandler | None = None,
        cookie_secure: bool | None = None,
        session_max_age: int = SESSION_MAX_AGE,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.client = client
        self.manager = manager
        self.codec = CookieCodec(secret_keys)
        redirect = urlsplit(client.redirect_uri)
        self.login_path = _check_path("login_path", login_path)
        self.callback_path = _check_path("callback_path", callback_path or redirect.path or "/")
        self.logout_path = _check_path("logout_path", logout_path)
        self.logout_everywhere_path = (
            None
            if logout_everywhere_path is None
            else _check_path("logout_everywhere_path", logout_everywhere_path)
        )
        manager.sessions  # noqa: B018 - sessions are server-side: fail now without a store
        self.home_path = _check_path("home_path", home_path)
        self.tenant_verifier = tenant_verifier
        self.error_handler = error_handler
        self.cookie_secure = redirect.scheme == "https" if cookie_secure is None else cookie_secure
        self.session_max_age = session_max_age
        self.flow_max_age = FLOW_MAX_AGE
        #: Origins this site is reached at: return URLs and logout Origin headers must match.
        self.origins = frozenset({origin_of(client.redirect_uri)})
        # __Host- (Secure, Path=/, no Domain): no sibling subdomain can plant one, so a
        # flow cookie proves the flow began in this browser (login CSRF by cookie tossing).
        # On http no prefix exists; flow cookies then stay under the path login and
        # callback share, so login can see (and cap) the flows in progress.
        prefix = "__Host-" if self.cookie_secure else ""
        self.session_cookie = prefix + "whop_session"
        self._flow_prefix = prefix + "whop_flow_"
        shared = posixpath.commonpath([self.login_path, self.callback_path])
        self._flow_path = "/" if self.cookie_secure else shared
        self._http = http_client
        self._owns_http = http_client is None
        self._endpoints = AuthEndpoints(self)

    def __repr__(self) -> str:
        return f"WhopAuth(client={self.client!r}, callback_path={self.callback_path!r})"

    @property
    def routes(self) -> list[BaseRoute]:
        """Login (GET), callback (GET) and logout (POST), named ``whop_login`` etc.;
        with ``logout_everywhere_path``, also ``whop_logout_everywhere`` (POST)."""
        endpoints = self._endpoints
        routes: list[BaseRoute] = [
            Route(self.login_path, endpoints.login, methods=["GET"], name="whop_login"),
            Route(self.callback_path, endpoints.callback, methods=["GET"], name="whop_callback"),
            Route(self.logout_path, endpoints.logout, methods=["POST"], name="whop_logout"),
        ]
        if self.logout_everywhere_path is not None:
            routes.append(
                Route(
                    self.logout_everywhere_path,
                    endpoints.logout_everywhere,
                    methods=["POST"],
                    name="whop_logout_everywhere",
                )
            )
        return routes

    @property
    def middleware(self) -> Middleware:
        """The middleware to list in ``Starlette(middleware=[...])``."""
        return Middleware(WhopAuthMiddleware, auth=self)

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The one pooled client every user's API calls share (made on first use).

        It keeps no cookies: a cookie the provider sets on one user's answer must not
        ride on the next user's request. An injected client is used through a view
        that shares its connection pool but neither sends nor keeps its cookies.
        """
        if self._http is None:
            self._http = new_http_client(timeout=httpx.Timeout(10.0), follow_redirects=False)
        return without_cookies(self._http)

    async def aclose(self) -> None:
        """Close the shared HTTP client if this object made it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- cookies ---------------------------------------------------------------

    def read_session(self, conn: HTTPConnection) -> AuthState:
        """The request's state from its session cookie; unusable cookies are dropped."""
        raw = conn.cookies.get(self.session_cookie)
        if raw is None:
            return AuthState(self, None)
        session, current = self.codec.loads_session(raw, max_age=self.session_max_age)
        if session is None:
            logger.info("ignoring an invalid or expired session cookie")
            return AuthState(self, None, write="clear")
        return AuthState(self, session, write="keep" if current else "set")

    def session_cookie_header(self, session: SessionData | None) -> str:
        """``Set-Cookie`` for ``session``, or deleting the cookie for ``None``."""
        if session is None:
            return cookie_header(
                self.session_cookie, "", path="/", max_age=0, secure=self.cookie_secure
            )
        remaining = session.login_at + self.session_max_age - int(time.time())
        return cookie_header(
            self.session_cookie,
            self.codec.dumps_session(session),
            path="/",
            max_age=remaining,
            secure=self.cookie_secure,
        )

    def flow_cookie_name(self, state: str) -> str | None:
        """The flow cookie's name for ``state`` (two tabs, two cookies), or ``None``."""
        suffix = flow_cookie_suffix(state)
        return None if suffix is None else self._flow_prefix + suffix

    def flow_cookie_header(self, conn: HTTPConnection, name: str, value: str | None) -> str:
        """``Set-Cookie`` for a flow cookie, or deleting it for ``None``."""
        root = "" if self.cookie_secure else conn.scope.get("root_path", "").rstrip("/")
        path = root + self._flow_path if self._flow_path != "/" else root or "/"
        return cookie_header(
            name,
            value or "",
            path=path,
            max_age=self.flow_max_age if value else 0,
            secure=self.cookie_secure,
        )

    def stale_flow_cookies(self, conn: HTTPConnection) -> list[str]:
        """Flow cookies to drop so that, with a new one, at most ``MAX_FLOWS`` remain.

        Abandoned sign-ins would otherwise pile up for ten minutes and could make
        the callback's ``Cookie`` header too large for the server.
        """
        dead: list[str] = []
        live: list[tuple[float, str]] = []
        for name, value in conn.cookies.items():
            if name.startswith(self._flow_prefix):
                started = self.codec.flow_timestamp(value, max_age=self.flow_max_age)
                if started is None:
                    dead.append(name)
                else:
                    live.append((started, name))
        live.sort()
        excess = max(len(live) - (MAX_FLOWS - 1), 0)
        return dead + [name for _, name in live[:excess]]

    # -- decisions the app can change -------------------------------------------

    async def error_response(self, request: Request, error: WhopOAuthError) -> Response:
        """The answer to a failed sign-in: the app's ``error_handler`` or the default page."""
        status = status_for(error)
        log = logger.info if status == 400 else logger.warning
        log("sign-in failed: %s (HTTP %d)", type(error).__name__, status)
        response: Response
        if self.error_handler is None:
            root = request.scope.get("root_path", "")
            response = error_page(
                error, status, login_url=root + self.login_path, home_url=self.home_path
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
            target = f"{root}{self.login_path}?{urlencode({'next': here})}"
            return RedirectResponse(target, status_code=303, headers=NO_CACHE_HEADERS)
        return JSONResponse(
            {"error": "sign_in_required"},
            status_code=401,
            headers={"Cache-Control": "no-store"},
        )
