"""The test driver: the real OAuthClient against a MockWhop, a sign-in through the real
code flow."""

from __future__ import annotations

import dataclasses
import time

import httpx

from whop_oauth import OAuthClient, Token, whop_metadata

CLIENT_ID = "app_mock"
REDIRECT_URI = "http://127.0.0.1/callback"
USER = "user_mock1"


def make_client(issuer: str, http: httpx.AsyncClient, **options: object) -> OAuthClient:
    """The real OAuthClient, pointed at a MockWhop issuer."""
    return OAuthClient(
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        provider=whop_metadata(issuer),
        http_client=http,
        **options,  # type: ignore[arg-type]
    )


async def sign_in(client: OAuthClient, http: httpx.AsyncClient) -> Token:
    """A grant obtained through the real code flow (the mock approves at once)."""
    flow = client.authorization_request()
    response = await http.get(flow.url, follow_redirects=False)
    assert response.status_code in (302, 303), response.text
    query = httpx.URL(response.headers["location"]).query.decode()
    return await client.complete_authorization(query, flow)


def expired(token: Token) -> Token:
    """The same grant, as if its access token had expired a second ago."""
    return dataclasses.replace(token, expires_at=time.time() - 1)
