"""Run one Python block of README.md in this fresh interpreter: ``python readme_block.py FILE``.

Started by tests/test_readme.py, one process per block. The block runs as written, as
``__main__``; only the network differs: every httpx request to ``https://api.whop.com``
is answered by an in-process ``MockWhop`` with that issuer (so the Whop presets, discovery,
JWKS and the API all resolve to it), loopback goes through, and any other host is refused
(a README block never reaches the internet). ``input()`` plays the user at the browser:
it approves the last authorization URL the block made and returns where the mock sent the
browser. A block that leaves a Starlette ``app`` is then started, asked for ``/`` and shut
down (its lifespan runs both ways).
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import sys
from pathlib import Path
from typing import Any

import httpx

from whop_oauth import OAuthClient
from whop_oauth.testing import MockClient, MockWhop

WHOP_HOST = "api.whop.com"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: The client ids and redirect URIs README's blocks use, registered with the mock.
README_CLIENTS = ("app_XXXXXXXX", "app_A")
README_REDIRECTS = ("https://app.example/auth/callback",)

mock = MockWhop(f"https://{WHOP_HOST}")
for client_id in README_CLIENTS:
    mock.add_client(MockClient(client_id, redirect_uris=README_REDIRECTS))
_to_mock = mock.transport()
_real_send = httpx.AsyncHTTPTransport.handle_async_request


async def _send(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
    host = request.url.host
    if request.url.scheme == "https" and host == WHOP_HOST:
        return await _to_mock.handle_async_request(request)
    if host in LOOPBACK:
        return await _real_send(self, request)
    raise httpx.ConnectError(f"README test: no network beyond loopback ({host})", request=request)


_authorization_urls: list[str] = []
_real_authorization_request = OAuthClient.authorization_request


def _remember_url(self: OAuthClient, *args: Any, **kwargs: Any) -> Any:
    flow = _real_authorization_request(self, *args, **kwargs)
    _authorization_urls.append(flow.url)
    return flow


def _browser(prompt: object = "") -> str:
    """Approve the last authorization URL at the mock; return the redirect URL."""
    print(prompt)

    async def follow() -> str:
        async with httpx.AsyncClient(transport=mock.transport()) as browser:
            response = await browser.get(_authorization_urls[-1])
        assert response.status_code in (302, 303), response.text[:300]
        return response.headers["location"]

    # input() is called from inside the block's event loop: the browser gets its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, follow()).result()


def _exercise_app(namespace: dict[str, Any]) -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    app = namespace.get("app")
    if isinstance(app, Starlette):
        with TestClient(app, base_url="http://127.0.0.1:8000") as browser:
            response = browser.get("/")
            assert response.status_code == 200, response.text[:300]
        print("README block: app answered / with 200 and shut down")


def main() -> None:
    path = Path(sys.argv[1])
    httpx.AsyncHTTPTransport.handle_async_request = _send  # type: ignore[method-assign]
    OAuthClient.authorization_request = _remember_url  # type: ignore[method-assign]
    builtins.input = _browser
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102
    _exercise_app(namespace)


if __name__ == "__main__":
    main()
