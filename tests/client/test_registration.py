"""RFC 7591 dynamic client registration."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest
import respx
from client_support import METADATA

from whop_oauth import (
    ConfigurationError,
    InvalidResponseError,
    ProviderError,
    TransportError,
    register_client,
)

REGISTER = f"{METADATA.issuer}/oauth/register"
CLIENT = {
    "client_name": "My app",
    "redirect_uris": ["https://app.example/auth/callback"],
    "token_endpoint_auth_method": "none",
}


async def test_registration_posts_the_client_metadata_as_json(router: respx.MockRouter) -> None:
    route = router.post(REGISTER).respond(201, json={"client_id": "client_new", **CLIENT})

    registered = await register_client(METADATA, CLIENT, initial_access_token="iat_1")

    assert registered["client_id"] == "client_new"
    request = route.calls.last.request
    assert json.loads(request.content) == CLIENT
    assert request.headers["Authorization"] == "Bearer iat_1"


async def test_registration_without_initial_token_sends_no_authorization(
    router: respx.MockRouter,
) -> None:
    route = router.post(REGISTER).respond(201, json={"client_id": "c"})

    async with httpx.AsyncClient() as http:
        await register_client(METADATA, CLIENT, http_client=http)
        assert not http.is_closed  # an injected client is left open

    assert "Authorization" not in route.calls.last.request.headers


async def test_a_refused_registration_is_a_provider_error(router: respx.MockRouter) -> None:
    router.post(REGISTER).respond(
        400, json={"error": "invalid_redirect_uri", "error_description": "not https"}
    )

    with pytest.raises(ProviderError) as caught:
        await register_client(METADATA, CLIENT)

    assert caught.value.error == "invalid_redirect_uri"


async def test_a_registration_response_without_client_id_is_invalid(
    router: respx.MockRouter,
) -> None:
    router.post(REGISTER).respond(201, json={"client_name": "x"})

    with pytest.raises(InvalidResponseError, match="client_id"):
        await register_client(METADATA, CLIENT)


async def test_registration_is_not_resent_after_a_timeout(router: respx.MockRouter) -> None:
    route = router.post(REGISTER).mock(
        side_effect=[httpx.ReadTimeout("t"), httpx.Response(201, json={"client_id": "c"})]
    )

    with pytest.raises(TransportError):
        await register_client(METADATA, CLIENT)

    assert route.call_count == 1


async def test_registration_needs_an_endpoint_and_sane_metadata() -> None:
    without = dataclasses.replace(METADATA, registration_endpoint=None)

    with pytest.raises(ConfigurationError, match="registration endpoint"):
        await register_client(without, CLIENT)
    with pytest.raises(ConfigurationError, match="redirect_uris"):
        await register_client(METADATA, {"redirect_uris": "https://one.example"})
