"""The mock's discovery, userinfo, API resource, revocation, introspection, registration."""

from __future__ import annotations

import httpx
import pytest
from mock_support import Flow, bearer

from whop_oauth import whop_metadata
from whop_oauth.testing import MockWhop


async def test_discovery_advertises_whop_endpoints_and_capabilities(
    mock_whop: MockWhop, http: httpx.AsyncClient
) -> None:
    document = (await http.get("/.well-known/openid-configuration")).json()
    assert document == (await http.get("/.well-known/oauth-authorization-server")).json()
    assert document["issuer"] == mock_whop.issuer
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["ES256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_post",
        "client_secret_basic",
        "none",
    }
    for endpoint in ("introspection_endpoint", "registration_endpoint", "userinfo_endpoint"):
        assert document[endpoint].startswith(mock_whop.issuer + "/oauth/")


def test_metadata_has_the_same_paths_as_the_whop_preset(mock_whop: MockWhop) -> None:
    preset = whop_metadata(mock_whop.issuer)
    metadata = mock_whop.metadata
    for name in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "jwks_uri",
        "revocation_body",
        "api_base_url",
    ):
        assert getattr(metadata, name) == getattr(preset, name), name
    assert metadata.authorization_response_iss_parameter_supported


async def test_userinfo_returns_the_claims_the_scope_allows(flow: Flow) -> None:
    full = await flow.sign_in()
    info = (await flow.http.get("/oauth/userinfo", headers=bearer(full["access_token"]))).json()
    assert info["name"] == "Mock User"
    assert info["preferred_username"] == "mockuser"
    assert info["email_verified"] is True
    slim = await flow.sign_in(scope="openid email")
    info = (await flow.http.get("/oauth/userinfo", headers=bearer(slim["access_token"]))).json()
    assert set(info) == {"sub", "email", "email_verified"}


async def test_userinfo_without_openid_is_insufficient_scope(flow: Flow) -> None:
    tokens = await flow.sign_in(scope="profile")
    response = await flow.http.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/oauth/userinfo", "/api/v1/accounts/me", "/api/v1/me"])
async def test_protected_endpoints_need_a_bearer_header(http: httpx.AsyncClient, path: str) -> None:
    missing = await http.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="mock-whop"'
    wrong = await http.get(path, headers=bearer("forged"))
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]


async def test_an_access_token_in_the_query_string_is_refused(flow: Flow) -> None:
    tokens = await flow.sign_in()
    response = await flow.http.get(
        "/oauth/userinfo", params={"access_token": tokens["access_token"]}
    )
    assert response.status_code == 400


async def test_the_api_resource_returns_the_account_and_counts_calls(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    account = await flow.http.get("/api/v1/accounts/me", headers=bearer(tokens["access_token"]))
    assert account.json()["id"] == "user_mock1"
    assert account.json()["username"] == "mockuser"
    assert mock_whop.stats.api_calls == 1


@pytest.mark.parametrize("encoding", ["json", "data"])
async def test_revoking_a_refresh_token_ends_its_grant(
    mock_whop: MockWhop, flow: Flow, encoding: str
) -> None:
    tokens = await flow.sign_in()
    body = {"token": tokens["refresh_token"], "client_id": "app_mock"}
    response = await flow.http.post("/oauth/revoke", **{encoding: body})
    assert response.status_code == 200
    assert mock_whop.is_revoked(tokens["refresh_token"])
    assert (await flow.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"
    info = await flow.http.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 401
    assert mock_whop.stats.revoke == 1


async def test_revoking_an_access_token_leaves_the_refresh_token_working(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    body = {"token": tokens["access_token"], "client_id": "app_mock"}
    await flow.http.post("/oauth/revoke", json=body)
    assert mock_whop.is_revoked(tokens["access_token"])
    assert not mock_whop.is_revoked(tokens["refresh_token"])
    assert (await flow.refresh(tokens["refresh_token"])).status_code == 200


async def test_revoking_an_unknown_token_is_answered_200(http: httpx.AsyncClient) -> None:
    body = {"token": "never-issued", "client_id": "app_mock"}
    assert (await http.post("/oauth/revoke", json=body)).status_code == 200


async def test_introspection_reports_active_tokens_with_their_claims(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in(company_id="biz_9")
    body = {"token": tokens["access_token"], "client_id": "app_mock"}
    info = (await flow.http.post("/oauth/introspect", data=body)).json()
    assert info["active"] is True
    assert info["sub"] == "user_mock1"
    assert info["client_id"] == "app_mock"
    assert info["scope"] == "openid profile email"
    assert info["company_id"] == "biz_9"
    assert info["token_type"] == "Bearer"
    mock_whop.expire_access_tokens()
    assert (await flow.http.post("/oauth/introspect", data=body)).json() == {"active": False}


async def test_introspection_of_a_rotated_refresh_token_is_inactive(flow: Flow) -> None:
    tokens = await flow.sign_in(company_id="biz_9")
    body = {"token": tokens["refresh_token"], "client_id": "app_mock"}
    assert (await flow.http.post("/oauth/introspect", json=body)).json()["active"] is True
    await flow.refresh(tokens["refresh_token"], company_id="biz_9")
    assert (await flow.http.post("/oauth/introspect", json=body)).json() == {"active": False}


async def test_a_registered_client_can_sign_in_with_its_secret(
    mock_whop: MockWhop, http: httpx.AsyncClient
) -> None:
    metadata = {
        "redirect_uris": ["http://127.0.0.1:5000/auth/callback"],
        "client_name": "Registered",
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    registered = await http.post("/oauth/register", json=metadata)
    assert registered.status_code == 201
    client = registered.json()
    assert client["client_secret"].startswith("apik_")
    flow = Flow(http, client_id=client["client_id"])
    code = await flow.code()
    assert (await flow.exchange(code)).status_code == 401
    response = await flow.exchange(code, client_secret=client["client_secret"])
    assert response.status_code == 200
    assert mock_whop.stats.registrations == 1


@pytest.mark.parametrize(
    "metadata",
    [
        {"redirect_uris": ["http://app.example/cb"]},
        {"redirect_uris": []},
        {"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "jwt"},
    ],
)
async def test_registration_refuses_bad_metadata(
    http: httpx.AsyncClient, metadata: dict[str, object]
) -> None:
    response = await http.post("/oauth/register", json=metadata)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
