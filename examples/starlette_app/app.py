"""Sign in with Whop: the example app.

    python -m examples.starlette_app                      # http://127.0.0.1:8000
    uvicorn examples.starlette_app.app:app --workers 4    # with real credentials

Configured by the ``WHOP_*`` variables (see ``whop_oauth.Settings``). Without
``WHOP_CLIENT_ID`` it mounts a mock Whop at ``/mock-whop`` and signs in against it,
so it works offline; without keys it generates them into ``.whop_demo_keys.json``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from whop_oauth import OAuthClient, Settings, TokenManager
from whop_oauth.starlette import WhopAuth, csrf_token, current_user, user_http_client
from whop_oauth.testing import MockWhop

from ._demo import MOCK_PREFIX, mock_issuer, with_demo_keys
from ._failures import failure_handler
from ._pages import CSP, profile_page, signed_out_page, userinfo_page

__all__ = ["create_app"]

logger = logging.getLogger("examples.starlette_app")
_NO_STORE = {"Cache-Control": "no-store", "Content-Security-Policy": CSP}


def _client_and_routes(
    settings: Settings, http: httpx.AsyncClient | None
) -> tuple[OAuthClient, httpx.AsyncClient, list[BaseRoute]]:
    """The OAuth client, the one shared HTTP client, and the mock's routes (if any)."""
    if settings.client_id is not None:
        http = http or httpx.AsyncClient(timeout=10.0)
        return settings.build_client(http_client=http), http, []
    mock = MockWhop(mock_issuer(settings), consent=True)
    mount = Mount(MOCK_PREFIX, app=mock)
    # The server calls the mock in-process; the browser reaches the same mount over HTTP.
    http = http or httpx.AsyncClient(transport=httpx.ASGITransport(app=Router([mount])))
    client = OAuthClient(
        client_id="app_mock",
        redirect_uri=settings.redirect_uri,
        provider=mock.metadata,
        scope=settings.scopes,
        http_client=http,
    )
    logger.warning("WHOP_CLIENT_ID not set: signing in against the mock Whop at %s", mock.issuer)
    return client, http, [mount]


def create_app(
    environ: Mapping[str, str] | None = None, *, http_client: httpx.AsyncClient | None = None
) -> Starlette:
    """The example app, configured from ``environ`` (default ``os.environ``)."""
    settings = with_demo_keys(Settings.from_env(os.environ if environ is None else environ))
    demo = settings.client_id is None
    client, http, extra_routes = _client_and_routes(settings, http_client)
    store = settings.open_store()
    manager = TokenManager(client, store)
    whop = WhopAuth(
        client,
        manager,
        secret_keys=settings.session_secrets,
        http_client=http,
        provider_name=settings.provider_name,  # WHOP_PROVIDER_NAME; None: from the issuer
        after_logout_path="/?signed_out=1",  # the home page says "You're signed out."
        error_handler=failure_handler(demo=demo),  # failed sign-ins in this app's look
    )

    async def home(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            page = signed_out_page(
                login_url=request.url_for("whop_login").path,
                demo=demo,
                just_signed_out=request.query_params.get("signed_out") == "1",
            )
        else:
            logout_url = request.url_for("whop_logout").path
            page = profile_page(
                user, csrf_token=csrf_token(request), logout_url=logout_url, demo=demo
            )
        return HTMLResponse(page, headers=_NO_STORE)

    async def me(request: Request) -> Response:
        # The provider's userinfo, fetched with the user's Bearer token through
        # UserTokenAuth: an expired token is refreshed first, a 401 once more.
        metadata = await client.load_metadata()
        if metadata.userinfo_endpoint is None:  # an OAuth-only provider (the load said so)
            return JSONResponse(
                {"error": "no_userinfo", "error_description": "the provider has no userinfo"},
                status_code=404,
                headers=_NO_STORE,
            )
        answer = await user_http_client(request).get(metadata.userinfo_endpoint)
        browser = "text/html" in request.headers.get("accept", "")
        is_json = answer.headers.get("content-type", "").startswith("application/json")
        wants_page = request.query_params.get("format") != "json"
        if browser and answer.status_code == 200 and is_json and wants_page:
            return HTMLResponse(userinfo_page(answer.json(), demo=demo), headers=_NO_STORE)
        # Anything else (a signed application/jwt userinfo, an error) is passed through.
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
            headers={"Cache-Control": "no-store"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.aclose()
        if http_client is None:  # close the client only if this app made it
            await http.aclose()

    app = Starlette(
        routes=[Route("/", home), Route("/me", me), *whop.routes, *extra_routes],
        middleware=[whop.middleware],
        lifespan=lifespan,
    )
    app.state.whop = whop
    return app


def __getattr__(name: str) -> Any:
    # ``app`` is built on first access (uvicorn's "examples.starlette_app.app:app"),
    # so importing create_app in tests writes no key file and opens no store.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
