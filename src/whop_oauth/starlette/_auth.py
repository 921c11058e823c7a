"""``WhopAuth``: the one object an app creates to add "Sign in with Whop".

It only assembles the parts: a ``CookiePolicy`` and a ``Site`` (leaf objects the
routes, middleware and request helpers share) and the endpoints. Its public API is
``routes``, ``middleware``, ``http_client`` and ``aclose``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from starlette.datastructures import Secret
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from .._errors import ConfigurationError
from .._hooks import check_hook
from .._tenants import TenantVerifier
from .._token import TokenKey
from ._middleware import WhopAuthMiddleware
from ._pages import provider_display_name
from ._policy import SESSION_MAX_AGE, CookiePolicy
from ._redirects import origin_of
from ._routes import AuthEndpoints
from ._site import ErrorHandler, Paths, SharedHTTPClient, Site

if TYPE_CHECKING:
    from .._client import OAuthClient
    from .._manager import TokenManager

__all__ = ["ErrorHandler", "TenantVerifier", "WhopAuth"]


def _check_path(name: str, value: str) -> str:
    if not value.startswith("/") or value.startswith("//"):
        raise ConfigurationError(f"{name} must be a path starting with a single '/'")
    return value


def _paths(
    redirect_path: str,
    login: str,
    callback: str | None,
    logout: str,
    home: str,
    logout_everywhere: str | None,
    after_logout: str | None = None,
) -> Paths:
    return Paths(
        login=_check_path("login_path", login),
        callback=_check_path("callback_path", callback or redirect_path or "/"),
        logout=_check_path("logout_path", logout),
        home=_check_path("home_path", home),
        logout_everywhere=None
        if logout_everywhere is None
        else _check_path("logout_everywhere_path", logout_everywhere),
        after_logout=None
        if after_logout is None
        else _check_path("after_logout_path", after_logout),
    )


class WhopAuth:
    """Sign in with Whop for a Starlette (or FastAPI) app: routes plus one middleware.

    ``secret_keys`` sign the cookies: the first signs, all verify (put a new key
    first to rotate). The login request's ``?company_id=biz_...`` asks for a
    company-scoped grant; the tenant the token is stored under is what the
    provider confirmed, or what ``tenant_verifier`` (``async (token) -> tenant``)
    returns (see ``whop_oauth.prove_tenant``).
    ``callback_path`` defaults to the path of the client's ``redirect_uri``;
    ``cookie_secure`` to whether that URI is https. Sign-out sends the browser to
    ``after_logout_path`` (default ``home_path``), e.g. ``"/?signed_out=1"`` for a notice.
    ``provider_name`` is how the default error pages name the provider: "Whop" for
    Whop's issuers, else the issuer's host name. ``on_sign_in(key)`` (sync or async)
    runs after each sign-in, once the grant is stored: ``key.tenant`` and ``key.user``
    say whom a background job can now act for (never a token; a hook that raises is
    logged and the sign-in goes on).

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
        after_logout_path: str | None = None,
        error_handler: ErrorHandler | None = None,
        cookie_secure: bool | None = None,
        session_max_age: int = SESSION_MAX_AGE,
        http_client: httpx.AsyncClient | None = None,
        provider_name: str | None = None,
        on_sign_in: Callable[[TokenKey], object] | None = None,
    ) -> None:
        redirect = urlsplit(client.redirect_uri)
        paths = _paths(
            redirect.path, login_path, callback_path, logout_path, home_path,
            logout_everywhere_path, after_logout_path,
        )
        check_hook("WhopAuth on_sign_in", on_sign_in, ("key",))
        manager.sessions  # noqa: B018 - sessions are server-side: fail now without a store
        secure = redirect.scheme == "https" if cookie_secure is None else cookie_secure
        cookies = CookiePolicy(
            secret_keys,
            secure=secure,
            flow_paths=(paths.login, paths.callback),
            session_max_age=session_max_age,
        )
        self._site = Site(
            client=client,
            manager=manager,
            cookies=cookies,
            paths=paths,
            origins=frozenset({origin_of(client.redirect_uri)}),
            http=SharedHTTPClient(http_client),
            tenant_verifier=tenant_verifier,
            error_handler=error_handler,
            provider_name=provider_name or provider_display_name(client.issuer),
            on_sign_in=on_sign_in,
        )
        self._endpoints = AuthEndpoints(self._site)

    def __repr__(self) -> str:
        site = self._site
        return f"WhopAuth(client={site.client!r}, callback_path={site.paths.callback!r})"

    @property
    def routes(self) -> list[BaseRoute]:
        """Login (GET), callback (GET) and logout (POST), named ``whop_login`` etc.;
        with ``logout_everywhere_path``, also ``whop_logout_everywhere`` (POST)."""
        paths, endpoints = self._site.paths, self._endpoints
        routes: list[BaseRoute] = [
            Route(paths.login, endpoints.login, methods=["GET"], name="whop_login"),
            Route(paths.callback, endpoints.callback, methods=["GET"], name="whop_callback"),
            Route(paths.logout, endpoints.logout, methods=["POST"], name="whop_logout"),
        ]
        if paths.logout_everywhere is not None:
            routes.append(
                Route(
                    paths.logout_everywhere,
                    endpoints.logout_everywhere,
                    methods=["POST"],
                    name="whop_logout_everywhere",
                )
            )
        return routes

    @property
    def middleware(self) -> Middleware:
        """The middleware to list in ``Starlette(middleware=[...])``."""
        return Middleware(WhopAuthMiddleware, site=self._site)

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The one pooled client every user's API calls share (made on first use).

        It keeps no cookies: a cookie the provider sets on one user's answer must not
        ride on the next user's request. An injected client is used through a view
        that shares its connection pool but neither sends nor keeps its cookies.
        """
        return self._site.http.get()

    async def aclose(self) -> None:
        """Close the shared HTTP client if this object made it."""
        await self._site.http.aclose()
