"""Helpers for the mock Whop tests: a flow driver that acts as an OAuth client would."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

REDIRECT_URI = "http://127.0.0.1:5000/auth/callback"


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect response's Location."""
    assert response.status_code in (302, 303), response.text
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


def authorize_params(verifier: str, **overrides: Any) -> dict[str, Any]:
    """A valid authorization request for ``app_mock``; ``None`` drops a parameter."""
    params = {
        "response_type": "code",
        "client_id": "app_mock",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


class Flow:
    """Drives the mock as a client would: authorize, exchange, refresh."""

    def __init__(self, http: httpx.AsyncClient, client_id: str = "app_mock") -> None:
        self.http = http
        self.client_id = client_id
        self.verifier = secrets.token_urlsafe(48)

    def authorize_params(self, **overrides: Any) -> dict[str, Any]:
        return authorize_params(self.verifier, **{"client_id": self.client_id, **overrides})

    async def authorize(self, **overrides: Any) -> httpx.Response:
        return await self.http.get("/oauth/authorize", params=self.authorize_params(**overrides))

    async def code(self, **overrides: Any) -> str:
        return redirect_query(await self.authorize(**overrides))["code"]

    async def exchange(self, code: str, **overrides: Any) -> httpx.Response:
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
        }
        body.update(overrides)
        return await self.http.post("/oauth/token", data={k: v for k, v in body.items() if v})

    async def sign_in(self, **overrides: Any) -> dict[str, Any]:
        response = await self.exchange(await self.code(**overrides))
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        body = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        body.update(client_id=self.client_id, **extra)
        return await self.http.post("/oauth/token", json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
