"""WhopAuth is a façade, not a service locator: its public API is four names.

That the parts share a leaf ``Site`` (and its ``CookiePolicy``), import one another
in no circle and never import the façade is checked with the whole package's
import graph in ``tests/test_layering.py``."""

from __future__ import annotations

import httpx

from whop_oauth import OAuthClient, TokenManager
from whop_oauth.starlette import WhopAuth
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockWhop


def test_whop_auth_offers_only_routes_middleware_http_client_and_aclose() -> None:
    mock = MockWhop()
    client = OAuthClient(
        client_id="app_mock",
        redirect_uri="https://app.test/auth/callback",
        provider=mock.metadata,
        http_client=httpx.AsyncClient(transport=mock.transport()),
    )
    whop = WhopAuth(client, TokenManager(client, MemoryTokenStore()), secret_keys=["k" * 40])

    public = {name for name in dir(whop) if not name.startswith("_")}
    assert public == {"routes", "middleware", "http_client", "aclose"}
