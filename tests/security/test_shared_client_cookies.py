"""HTTP clients shared by many users keep no cookies.

An httpx client stores every ``Set-Cookie`` it receives and sends it on later
requests to that host. The pooled client behind ``user_http_client`` and the client
``OAuthClient`` refreshes every user's grant through are shared by all users: a
cookie the provider sets on Alice's answer must not ride on Bob's request. Clients
the library makes have a jar that keeps nothing; an injected client is used through
a view that neither sends its jar's cookies nor adds to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from security_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SESSION_KEY, USER, App

from whop_oauth import (
    OAuthClient,
    ProviderMetadata,
    Token,
    TokenManager,
    register_client,
    validate_license,
)
from whop_oauth.starlette import WhopAuth
from whop_oauth.stores import MemoryTokenStore
from whop_oauth.testing import MockUser, MockWhop

BOB = "user_bob"
ISSUER = "https://idp.test"


def _metadata(base: str) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=base,
        authorization_endpoint=f"{base}/oauth/authorize",
        token_endpoint=f"{base}/oauth/token",
        userinfo_endpoint=f"{base}/oauth/userinfo",
        revocation_endpoint=f"{base}/oauth/revoke",
        introspection_endpoint=f"{base}/oauth/introspect",
        registration_endpoint=f"{base}/oauth/register",
        api_base_url=f"{base}/api/v1",
    )


def _answer(path: str) -> tuple[int, dict[str, Any]]:
    """What the fake provider says to each endpoint."""
    if path.endswith("/token"):
        return 200, {"access_token": "at_2", "token_type": "Bearer", "refresh_token": "rt_2"}
    if path.endswith("/register"):
        return 201, {"client_id": "client_new"}
    return 200, {"sub": USER, "active": True, "id": "mem_1"}


async def test_a_cookie_the_provider_sets_for_one_user_never_rides_on_the_next_users_request(
    app: App, mock: MockWhop
) -> None:
    """The app shares one injected httpx client between users, as the example app does."""
    mock.add_user(MockUser(BOB, name="Bob", username="bob", email="bob@example.test"))
    alices_cookie = secrets.token_urlsafe(16)
    async with app.browser() as alice, app.browser() as bob:
        await app.sign_in(alice)
        mock.login_as(BOB)
        await app.sign_in(bob)
        cookie = f"provider_session={alices_cookie}; Path=/"
        mock.fail_next("api", 200, {"id": USER}, headers={"Set-Cookie": cookie})
        assert (await alice.get("/account")).json() == {"id": USER}

        answer = await bob.get("/account")

    assert answer.json()["id"] == BOB
    api_calls = [r for r in app.wire.requests if r.url.path == "/api/v1/me"]
    assert len(api_calls) == 2
    assert [r for r in app.wire.requests if "cookie" in r.headers] == []


Operation = Callable[[httpx.AsyncClient], Awaitable[object]]


def _client(http: httpx.AsyncClient | None, base: str = ISSUER) -> OAuthClient:
    return OAuthClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        provider=_metadata(base),
        http_client=http,
    )


def _whop(client: OAuthClient, http: httpx.AsyncClient | None) -> WhopAuth:
    manager = TokenManager(client, MemoryTokenStore())
    return WhopAuth(client, manager, secret_keys=[SESSION_KEY], http_client=http)


GRANT = Token("at_1", refresh_token="rt_1", expires_at=None)
OPERATIONS: dict[str, Operation] = {
    "refresh": lambda http: _client(http).refresh(GRANT),
    "revoke": lambda http: _client(http).revoke(GRANT),
    "userinfo": lambda http: _client(http).userinfo("at_1"),
    "introspect": lambda http: _client(http).introspect("at_1"),
    "license validation": lambda http: validate_license(
        "LICENSE-KEY", api_key="apik_test", base_url=ISSUER, http_client=http
    ),
    "registration": lambda http: register_client(
        _metadata(ISSUER), {"redirect_uris": [REDIRECT_URI]}, http_client=http
    ),
    "a user's API call": lambda http: _whop(_client(http), http).http_client.get(
        f"{ISSUER}/api/v1/me"
    ),
}


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_an_injected_clients_cookie_jar_is_neither_sent_nor_filled(operation: str) -> None:
    sent_cookies: list[str | None] = []

    def provider(request: httpx.Request) -> httpx.Response:
        sent_cookies.append(request.headers.get("cookie"))
        status, body = _answer(request.url.path)
        return httpx.Response(status, json=body, headers={"Set-Cookie": "sid=from_provider"})

    jar = {"app_cookie": "the_apps_own"}
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider), cookies=jar) as http:
        await OPERATIONS[operation](http)
        await OPERATIONS[operation](http)  # would carry the first answer's cookie

        assert dict(http.cookies) == jar  # untouched: nothing added, nothing taken away
        assert (await http.get(f"{ISSUER}/elsewhere")).status_code == 200  # the app's own use
    assert sent_cookies == [None, None, "app_cookie=the_apps_own"]


@dataclass
class CookieServer:
    """A provider on a loopback port that sets a cookie on every answer."""

    base: str = ""
    cookies: list[str | None] = field(default_factory=list)  # each request's Cookie header
    busy_once: set[str] = field(default_factory=set)  # paths answered 503 the first time


@contextlib.asynccontextmanager
async def cookie_server() -> AsyncIterator[CookieServer]:
    seen = CookieServer()
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):  # keep-alive: many requests
                lines = head.decode().split("\r\n")
                headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
                await reader.readexactly(int(headers.get("content-length", "0")))
                path = lines[0].split()[1]
                seen.cookies.append(headers.get("cookie"))
                status, body = _answer(path)
                if "validate_license" in path and path not in seen.busy_once:
                    seen.busy_once.add(path)
                    status = 503
                raw = httpx.Response(status, json=body).content
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(raw)}\r\n"
                    f"Set-Cookie: sid=n{len(seen.cookies)}; Path=/\r\n\r\n".encode()
                    + raw
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen.base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield seen
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def test_the_clients_the_library_makes_keep_no_cookies() -> None:
    async with cookie_server() as provider:
        base = provider.base
        client = _client(None, base)  # makes its own HTTP client
        whop = _whop(client, None)  # makes the pooled client users' API calls share
        for _ in range(2):
            await client.userinfo("at_1")
            await whop.http_client.get(f"{base}/api/v1/me")
        # One call, two attempts (503, then 200) through a client made for the call.
        await validate_license("KEY", api_key="apik_test", base_url=base)
        await whop.aclose()
        await client.aclose()

    assert len(provider.cookies) == 6
    assert provider.cookies == [None] * 6
