"""whop_oauth against an authorization server it was not written with: panva's
oidc-provider (Node.js), found by discovery, with rotating refresh tokens and reuse
detection. Every value checked here is the provider's own view (introspection, its
counters), not the client's."""

from __future__ import annotations

import httpx
import pytest
from independent_support import CLIENTS, SUBJECT, OidcServer, make_client, sign_in

from whop_oauth import InvalidGrantError, OAuthClient


def _delta(server: OidcServer, before: dict[str, int]) -> dict[str, int]:
    after = server.stats()
    return {name: after[name] - before[name] for name in after}


async def _active(client: OAuthClient, token: str, hint: str) -> bool:
    result = await client.introspect(token, token_type_hint=hint)
    assert isinstance(result["active"], bool)
    return result["active"]


@pytest.mark.parametrize("client_id", sorted(CLIENTS))
async def test_code_flow_refresh_introspection_and_revocation(
    oidc_10s: OidcServer, http: httpx.AsyncClient, client_id: str
) -> None:
    client = make_client(oidc_10s.issuer, http, client_id)
    metadata = await client.load_metadata()
    assert metadata.issuer == oidc_10s.issuer
    before = oidc_10s.stats()

    token = await sign_in(client)  # PKCE S256, state, iss and the id_token all checked

    assert token.subject == SUBJECT
    assert token.refresh_token is not None
    assert token.expires_at is not None
    assert token.expires_at - token.issued_at == pytest.approx(10, abs=2)
    introspected = await client.introspect(token.access_token, token_type_hint="access_token")
    assert introspected["active"] is True
    assert (introspected["client_id"], introspected["sub"]) == (client_id, SUBJECT)

    refreshed = await client.refresh(token)

    assert refreshed.refresh_token not in (None, token.refresh_token)  # rotated
    assert refreshed.access_token != token.access_token
    assert await _active(client, token.refresh_token, "refresh_token") is False  # spent
    assert await _active(client, refreshed.refresh_token, "refresh_token") is True
    assert (await client.userinfo(refreshed))["sub"] == SUBJECT

    await client.revoke(refreshed)

    assert await _active(client, refreshed.refresh_token, "refresh_token") is False
    assert await _active(client, refreshed.access_token, "access_token") is False
    delta = _delta(oidc_10s, before)
    assert delta["authorization_code"] == delta["refresh_token"] == delta["grants_revoked"] == 1
    assert delta["reuse_detected"] == delta["refresh_errors"] == 0


async def test_the_provider_revokes_the_grant_when_a_spent_refresh_token_is_replayed(
    oidc_10s: OidcServer, http: httpx.AsyncClient
) -> None:
    # What the storm tests guard against, shown on this server: one replay ends the grant.
    client = make_client(oidc_10s.issuer, http)
    token = await sign_in(client)
    refreshed = await client.refresh(token)
    assert refreshed.refresh_token is not None
    before = oidc_10s.stats()

    with pytest.raises(InvalidGrantError):
        await client.refresh(token)  # the spent refresh token, again

    delta = _delta(oidc_10s, before)
    assert delta["reuse_detected"] == delta["grants_revoked"] == 1
    assert await _active(client, refreshed.refresh_token, "refresh_token") is False
    with pytest.raises(InvalidGrantError):
        await client.refresh(refreshed)  # the newest token died with the grant
