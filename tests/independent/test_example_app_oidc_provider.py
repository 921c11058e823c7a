"""The example app (examples/starlette_app) against panva's oidc-provider, configured only
by WHOP_* variables as a user would: sign-in with each client authentication method (PKCE
required by the server), the id_token, introspection, /me, revocation at sign-out, and two
workers sharing one SQLite store while the provider rotates refresh tokens and revokes the
grant on any reuse. What is checked is the provider's view (introspection, its counters)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from examples.starlette_app.app import create_app
from independent_support import SUBJECT, OidcServer
from starlette.applications import Starlette

from whop_oauth import Token, TokenManager

#: server.mjs's clients for the example app: client_id -> (secret, auth method).
APP_CLIENTS: dict[str, tuple[str | None, str]] = {
    "app-post": ("app-post-secret-for-tests-only", "client_secret_post"),
    "app-basic": ("app-basic-secret-for-tests-only", "client_secret_basic"),
    "app-public": (None, "none"),
}
ORIGIN = "http://127.0.0.1:8123"  # the app's origin as the browser sees it (in-process)


def environ(server: OidcServer, client_id: str, store: str, keys: list[str]) -> dict[str, str]:
    """The WHOP_* variables a user would set for this provider and client."""
    secret, method = APP_CLIENTS[client_id]
    env = {
        "WHOP_ISSUER": server.issuer,
        "WHOP_CLIENT_ID": client_id,
        "WHOP_TOKEN_ENDPOINT_AUTH_METHOD": method,
        "WHOP_REDIRECT_URI": f"{ORIGIN}/auth/callback",
        "WHOP_SCOPES": "openid profile email",
        "WHOP_TOKEN_STORE": store,
        "WHOP_SESSION_SECRETS": "s" * 40,
        "WHOP_ENCRYPTION_KEYS": ",".join(keys),
    }
    if secret is not None:
        env["WHOP_CLIENT_SECRET"] = secret
    return env


class Workers(httpx.AsyncBaseTransport):
    """A load balancer: one origin, several app instances; the test picks the next one."""

    def __init__(self, apps: list[Starlette]) -> None:
        self.apps = apps
        self.transports = [httpx.ASGITransport(app=app) for app in apps]
        self.current = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transports[self.current].handle_async_request(request)


def manager_of(app: Starlette) -> TokenManager:
    manager: TokenManager = app.state.whop._site.manager
    return manager


async def stored_token(app: Starlette) -> Token:
    manager = manager_of(app)
    stored = await manager.store.get(manager.key(user=SUBJECT))
    assert stored is not None
    return stored.token


@contextlib.asynccontextmanager
async def running(*apps: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The apps started (lifespan), behind one origin; a cookie-keeping browser for them."""
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        browser = httpx.AsyncClient(transport=Workers(list(apps)), base_url=ORIGIN)
        yield await stack.enter_async_context(browser)


async def sign_in(browser: httpx.AsyncClient, next_path: str = "/") -> httpx.Response:
    """The browser's round trip: the app's login, the provider's pages, the app's callback."""
    login = await browser.get("/auth/login", params={"next": next_path})
    assert login.status_code == 303, login.text
    url = httpx.URL(login.headers["location"])
    assert url.params["code_challenge_method"] == "S256"
    async with httpx.AsyncClient() as at_provider:  # the browser's cookies for the provider
        for _ in range(10):
            answer = await at_provider.get(url)
            assert answer.status_code in (302, 303), answer.text[:500]
            url = url.join(answer.headers["location"])
            if str(url).startswith(f"{ORIGIN}/auth/callback"):
                break
        else:
            pytest.fail("the provider never sent the browser back to the app")
    return await browser.get(str(url))


def csrf_field(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page[:500]
    return match.group(1)


@pytest.mark.parametrize("client_id", sorted(APP_CLIENTS))
async def test_the_example_app_signs_in_calls_userinfo_and_revokes_at_sign_out(
    oidc_10s: OidcServer, client_id: str, keys: list[str], tmp_path: Path
) -> None:
    app = create_app(environ(oidc_10s, client_id, f"sqlite:///{tmp_path}/tokens.db", keys))
    client = app.state.whop._site.client
    before = oidc_10s.stats()
    async with running(app) as browser:
        callback = await sign_in(browser, next_path="/me")

        assert (callback.status_code, callback.headers["location"]) == (303, "/me")
        token = await stored_token(app)
        claims = token.id_token_claims  # verified by the client: signature, iss, aud, nonce
        assert (claims["iss"], claims["sub"]) == (oidc_10s.issuer, SUBJECT)
        assert client_id in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
        assert claims["nonce"]
        introspected = await client.introspect(token.access_token, token_type_hint="access_token")
        assert (introspected["active"], introspected["client_id"]) == (True, client_id)
        me = await browser.get("/me")  # JSON for a non-browser Accept
        assert (me.status_code, me.json()["sub"]) == (200, SUBJECT)
        assert me.json()["email"] == f"{SUBJECT}@example.test"
        card = await browser.get("/")
        assert SUBJECT in card.text

        out = await browser.post("/auth/logout", data={"csrf_token": csrf_field(card.text)})

        assert out.status_code == 303
        assert (await client.introspect(token))["active"] is False  # the refresh token
        assert "Sign in" in (await browser.get("/")).text
    after = oidc_10s.stats()
    assert after["authorization_code"] - before["authorization_code"] == 1
    assert after["grants_revoked"] - before["grants_revoked"] == 1


async def test_two_workers_share_one_grant_through_a_rotation_without_reuse(
    oidc_5s: OidcServer, keys: list[str], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path}/tokens.db"
    first = create_app(environ(oidc_5s, "app-post", store, keys))
    second = create_app(environ(oidc_5s, "app-post", store, keys))
    async with running(first, second) as browser:
        workers = browser._transport
        assert isinstance(workers, Workers)
        await sign_in(browser)  # on the first worker
        signed_in = await stored_token(first)
        assert signed_in.expires_at is not None
        workers.current = 1
        assert (await browser.get("/me")).status_code == 200  # the second uses the same grant
        before = oidc_5s.stats()
        # Wait for the provider's 5 s access token to become due (a quarter of its life left).
        await asyncio.sleep(max(0.0, signed_in.expires_at - 1.0 - time.time()))

        async def me_on(worker: int) -> int:
            workers.current = worker
            return (await browser.get("/me")).status_code

        statuses = await asyncio.gather(*(me_on(i % 2) for i in range(8)))

        assert statuses == [200] * 8
        delta = {name: value - before[name] for name, value in oidc_5s.stats().items()}
        assert delta["refresh_token"] == 1  # one rotation for both workers
        assert delta["reuse_detected"] == delta["refresh_errors"] == 0
        rotated = await stored_token(second)
        assert rotated.refresh_token != signed_in.refresh_token
        client = first.state.whop._site.client
        assert (await client.introspect(signed_in))["active"] is False  # spent
        assert (await client.introspect(rotated))["active"] is True
