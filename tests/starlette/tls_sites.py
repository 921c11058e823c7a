"""Three https sites on one uvicorn process, told apart by ``Host``, for the cookie tossing
test (``test_cookie_tossing.py``):

- ``app.test``: an app with "Sign in with Whop" (``WhopAuth``), ``GET /`` says who is signed in;
- ``whop.test``: the mock Whop, which approves every authorization at once;
- ``evil.app.test``: an attacker's sibling subdomain. ``GET /plant?name=&value=&next=`` sets
  a flow cookie for the whole ``app.test`` domain (``Domain=app.test``) under the given name
  and its variants, then sends the browser to ``next``.

Run by uvicorn with ``SITES_PORT`` set to the port it serves (the port is part of every URL).
"""

from __future__ import annotations

import os

import httpx
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from whop_oauth import OAuthClient, TokenManager
from whop_oauth.starlette import WhopAuth, current_user
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockClient, MockWhop

PORT = int(os.environ["SITES_PORT"])
APP_ORIGIN = f"https://app.test:{PORT}"
CALLBACK = f"{APP_ORIGIN}/auth/callback"

mock = MockWhop(
    f"https://whop.test:{PORT}",
    clients={"app_web": MockClient("app_web", redirect_uris=[CALLBACK])},
)
# The app talks to the mock in-process; only the browser goes through the network.
client = OAuthClient(
    client_id="app_web",
    redirect_uri=CALLBACK,
    provider=mock.metadata,
    http_client=httpx.AsyncClient(transport=mock.transport()),
)
whop = WhopAuth(client, TokenManager(client, MemoryTokenStore()), secret_keys=["k" * 40])


async def home(request: Request) -> Response:
    user = current_user(request)
    return JSONResponse({"signed_in": user is not None, "id": user and user.id})


async def plant(request: Request) -> Response:
    name, value = request.query_params["name"], request.query_params["value"]
    suffix = name.split("whop_flow_", 1)[1]
    attributes = "Domain=app.test; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"
    response = RedirectResponse(request.query_params["next"], status_code=303)
    for cookie in (
        f"{name}={value}",  # the name the app itself used
        f"__Host-whop_flow_{suffix}={value}",
        f"__Secure-whop_flow_{suffix}={value}",
        f"whop_flow_{suffix}={value}",
        f"=__Host-whop_flow_{suffix}={value}",  # a nameless cookie posing as __Host-
    ):
        response.headers.append("set-cookie", f"{cookie}; {attributes}")
    return response


site = Starlette(routes=[*whop.routes, Route("/", home)], middleware=[whop.middleware])
evil = Starlette(routes=[Route("/plant", plant)])
SITES = {"app.test": site, "whop.test": mock, "evil.app.test": evil}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await site(scope, receive, send)
        return
    host = Headers(scope=scope).get("host", "").rsplit(":", 1)[0]
    target = SITES.get(host)
    if target is None:
        await PlainTextResponse("unknown host", status_code=421)(scope, receive, send)
        return
    await target(scope, receive, send)
