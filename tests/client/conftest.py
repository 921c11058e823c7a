"""Shared pieces for the client tests: a fake provider's metadata, keys, respx, no waiting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import respx
from client_support import CLIENT_ID, ISSUER, METADATA, REDIRECT_URI
from joserfc import jwt
from joserfc.jwk import ECKey
from no_sleep import sleeps

from whop_oauth import OAuthClient


@pytest.fixture(scope="session")
def signing_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256", "use": "sig"})


@pytest.fixture
def jwks(signing_key: ECKey) -> dict[str, Any]:
    return {"keys": [signing_key.as_dict(private=False)]}


@pytest.fixture
def make_id_token(signing_key: ECKey) -> Callable[..., str]:
    """Sign an id_token for CLIENT_ID at ISSUER; keyword arguments change claims."""

    def make(*, key: Any = None, header: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "sub": "user_1",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": "nonce-1",
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(header or {"alg": "ES256", "kid": "k1"}, payload, key or signing_key)

    return make


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx in strict mode: a request to anything not routed fails the test."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., OAuthClient]]:
    """Build OAuthClients for the fake provider; all are closed after the test."""
    made: list[OAuthClient] = []

    def make(**overrides: Any) -> OAuthClient:
        options: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "provider": METADATA,
        }
        options.update(overrides)
        client = OAuthClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


__all__ = ["jwks", "make_client", "make_id_token", "router", "signing_key", "sleeps"]
