"""The mock's token endpoint for codes: PKCE, single use, expiry, client auth, id_token."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from mock_support import REDIRECT_URI, Flow, bearer

from whop_oauth.testing import MockClient, MockWhop


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_code_flow_with_pkce_returns_bearer_tokens_for_the_user(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "openid profile email"
    assert tokens["refresh_token"] != tokens["access_token"]
    info = await flow.http.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.json()["sub"] == "user_mock1"
    assert mock_whop.stats.token_code == 1


async def test_token_responses_are_not_cached(flow: Flow) -> None:
    response = await flow.exchange(await flow.code())
    assert response.headers["cache-control"] == "no-store"


async def test_a_json_body_works_like_a_form_body(flow: Flow) -> None:
    code = await flow.code()
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": "app_mock",
        "code_verifier": flow.verifier,
    }
    response = await flow.http.post("/oauth/token", json=body)
    assert response.status_code == 200
    assert "access_token" in response.json()


async def test_a_wrong_code_verifier_fails_pkce_and_leaves_the_code_usable(flow: Flow) -> None:
    code = await flow.code()
    wrong = await flow.exchange(code, code_verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert (await flow.exchange(code)).status_code == 200


async def test_a_missing_code_verifier_is_an_invalid_request(flow: Flow) -> None:
    response = await flow.exchange(await flow.code(), code_verifier=None)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_reused_code_fails_and_revokes_the_tokens_it_gave(
    mock_whop: MockWhop, flow: Flow
) -> None:
    code = await flow.code()
    first = (await flow.exchange(code)).json()
    replay = await flow.exchange(code)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert mock_whop.is_revoked(first["refresh_token"])
    assert mock_whop.is_revoked(first["access_token"])
    assert mock_whop.stats.code_reuse_detected == 1
    refreshed = await flow.refresh(first["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"


async def test_a_code_expires_after_code_ttl() -> None:
    clock = FakeClock()
    mock = MockWhop(code_ttl=300, clock=clock)
    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as http:
        flow = Flow(http)
        late_code = await flow.code()
        clock.now += 300
        late = await flow.exchange(late_code)
        assert late.json() == {
            "error": "invalid_grant",
            "error_description": "the code has expired",
        }
        timely_code = await flow.code()
        clock.now += 299
        assert (await flow.exchange(timely_code)).status_code == 200


async def test_the_redirect_uri_must_match_the_authorization_request(flow: Flow) -> None:
    response = await flow.exchange(await flow.code(), redirect_uri="http://127.0.0.1:5001/cb")
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_is_bound_to_the_client_it_was_issued_to(mock_whop: MockWhop) -> None:
    mock_whop.add_client(MockClient("app_other"))
    async with httpx.AsyncClient(
        transport=mock_whop.transport(), base_url=mock_whop.issuer
    ) as http:
        code = await Flow(http).code()
        stolen = Flow(http, client_id="app_other")
        response = await stolen.exchange(code)
    assert response.json()["error"] == "invalid_grant"


async def test_unknown_grant_types_are_refused(flow: Flow) -> None:
    body = {"grant_type": "password", "client_id": "app_mock"}
    response = await flow.http.post("/oauth/token", data=body)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
async def confidential() -> AsyncIterator[Flow]:
    client = MockClient("app_conf", client_secret="apik_right")
    mock = MockWhop(clients={"app_conf": client})
    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as http:
        yield Flow(http, client_id="app_conf")


Auth = Callable[[str], tuple[dict[str, str], dict[str, str]]]
AUTH_METHODS: dict[str, Auth] = {
    "client_secret_post": lambda secret: ({}, {"client_secret": secret}),
    "client_secret_basic": lambda secret: (_basic("app_conf", secret), {}),
}


@pytest.mark.parametrize("method", sorted(AUTH_METHODS))
async def test_confidential_clients_authenticate_by_post_or_basic(
    confidential: Flow, method: str
) -> None:
    for secret, status in (("apik_wrong", 401), ("apik_right", 200)):
        headers, fields = AUTH_METHODS[method](secret)
        body = {
            "grant_type": "authorization_code",
            "code": await confidential.code(),
            "redirect_uri": REDIRECT_URI,
            "code_verifier": confidential.verifier,
            **fields,
        }
        if method == "client_secret_post":
            body["client_id"] = "app_conf"
        response = await confidential.http.post("/oauth/token", data=body, headers=headers)
        assert response.status_code == status, response.text


async def test_a_failed_basic_login_gets_a_basic_challenge(confidential: Flow) -> None:
    http = confidential.http
    body = {"grant_type": "refresh_token", "refresh_token": "x"}
    response = await http.post("/oauth/token", data=body, headers=_basic("app_conf", "nope"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_confidential_client_without_its_secret_is_invalid_client(
    confidential: Flow,
) -> None:
    response = await confidential.exchange(await confidential.code())
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_public_client_sending_a_secret_is_invalid_client(flow: Flow) -> None:
    response = await flow.exchange(await flow.code(), client_secret="apik_made_up")
    assert response.status_code == 401


async def test_the_id_token_verifies_with_the_jwks_and_carries_the_nonce(
    mock_whop: MockWhop, flow: Flow
) -> None:
    tokens = await flow.sign_in(nonce="n-123")
    keys = KeySet.import_key_set((await flow.http.get("/.well-known/jwks.json")).json())
    token = jwt.decode(tokens["id_token"], keys, algorithms=["ES256"])
    assert token.header["alg"] == "ES256"
    assert token.header["kid"] == keys.keys[0].kid
    claims = token.claims
    assert claims["iss"] == mock_whop.issuer
    assert claims["aud"] == "app_mock"
    assert claims["sub"] == "user_mock1"
    assert claims["nonce"] == "n-123"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["email"] == "mock.user@example.com"
    assert claims["picture"].startswith("data:image/svg+xml;base64,")


async def test_no_id_token_without_openid_and_claims_follow_scope(flow: Flow) -> None:
    assert "id_token" not in await flow.sign_in(scope="profile")
    tokens = await flow.sign_in(scope="openid email")
    claims = jwt.decode(
        tokens["id_token"],
        KeySet.import_key_set((await flow.http.get("/.well-known/jwks.json")).json()),
    ).claims
    assert "email" in claims
    assert "name" not in claims


async def test_rotating_the_signing_key_changes_the_kid_and_keeps_the_old_key_published(
    mock_whop: MockWhop, flow: Flow
) -> None:
    old = jwt.decode((await flow.sign_in())["id_token"], KeySet.import_key_set(mock_whop.jwks()))
    new_kid = mock_whop.rotate_signing_key()
    fresh = (await flow.sign_in())["id_token"]
    published = KeySet.import_key_set((await flow.http.get("/.well-known/jwks.json")).json())
    assert jwt.decode(fresh, published).header["kid"] == new_kid != old.header["kid"]
    assert {key.kid for key in published.keys} == {new_kid, old.header["kid"]}
    mock_whop.rotate_signing_key(keep_previous=False)
    assert len(mock_whop.jwks()["keys"]) == 1
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(fresh, KeySet.import_key_set(mock_whop.jwks()))


async def test_sign_id_token_signs_exactly_the_given_claims(mock_whop: MockWhop) -> None:
    claims = mock_whop.id_token_claims(nonce="n-1") | {"aud": "app_someone_else"}
    token = jwt.decode(mock_whop.sign_id_token(claims), KeySet.import_key_set(mock_whop.jwks()))
    assert token.claims == claims
    assert "d" in mock_whop.private_jwk
