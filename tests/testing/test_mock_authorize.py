"""The mock's authorization endpoint: validation, redirects, denial, consent page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from mock_support import REDIRECT_URI, Flow, bearer, redirect_query

from whop_oauth.testing import MockClient, MockUser, MockWhop


async def test_authorize_redirects_back_with_code_state_and_issuer(
    mock_whop: MockWhop, flow: Flow
) -> None:
    response = await flow.authorize(state="st-1")
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    query = redirect_query(response)
    assert query["state"] == "st-1"
    assert query["iss"] == mock_whop.issuer
    assert len(query["code"]) >= 32
    assert mock_whop.stats.authorize == 1


async def test_authorize_keeps_the_redirect_uris_own_query(flow: Flow) -> None:
    response = await flow.authorize(redirect_uri=REDIRECT_URI + "?tab=2")
    query = redirect_query(response)
    assert query["tab"] == "2"
    assert "code" in query


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
    ],
)
async def test_bad_authorization_requests_get_the_error_on_the_redirect(
    mock_whop: MockWhop, flow: Flow, overrides: dict[str, str | None], error: str
) -> None:
    query = redirect_query(await flow.authorize(state="st-2", **overrides))
    assert query["error"] == error
    assert query["state"] == "st-2"
    assert query["iss"] == mock_whop.issuer
    assert "code" not in query


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "app_unknown"},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": None},
    ],
)
async def test_unknown_client_or_redirect_uri_shows_a_page_and_never_redirects(
    flow: Flow, overrides: dict[str, str | None]
) -> None:
    response = await flow.authorize(**overrides)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Authorization error" in response.text


async def test_a_repeated_parameter_is_refused(http: httpx.AsyncClient, flow: Flow) -> None:
    params = [*flow.authorize_params().items(), ("scope", "openid")]
    query = redirect_query(await http.get("/oauth/authorize", params=params))
    assert query["error"] == "invalid_request"


async def test_registered_clients_match_redirect_uris_exactly() -> None:
    client = MockClient(
        "app_web", redirect_uris=["https://app.example/cb"], allow_loopback_redirects=False
    )
    mock = MockWhop(clients={"app_web": client})
    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as http:
        web = Flow(http, client_id="app_web")
        exact = await web.authorize(redirect_uri="https://app.example/cb")
        assert "code" in redirect_query(exact)
        assert (await web.authorize(redirect_uri="https://app.example/cb/")).status_code == 400
        assert (await web.authorize(redirect_uri=REDIRECT_URI)).status_code == 400


async def test_deny_next_refuses_once_then_approves_again(mock_whop: MockWhop, flow: Flow) -> None:
    mock_whop.deny_next()
    denied = redirect_query(await flow.authorize(state="st-3"))
    assert denied["error"] == "access_denied"
    assert denied["error_description"] == "The user denied access"
    assert denied["state"] == "st-3"
    assert "code" in redirect_query(await flow.authorize())


async def test_login_as_chooses_the_user_the_code_is_for() -> None:
    bob = MockUser("user_bob", name="Bob", username="bob", email="bob@example.com")
    mock = MockWhop(users=[MockUser("user_al", "Al", "al", "al@example.com"), bob])
    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as http:
        bob_flow = Flow(http)
        mock.login_as("user_bob")
        tokens = await bob_flow.sign_in()
        info = await http.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.json()["sub"] == "user_bob"
    with pytest.raises(KeyError):
        mock.login_as("user_nobody")


def _flow_id(page: str) -> str:
    match = re.search(r'name="flow" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


@pytest.fixture
async def consent_http() -> AsyncIterator[httpx.AsyncClient]:
    mock = MockWhop(consent=True, clients={"app_mock": MockClient("app_mock", name="Demo App")})
    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as http:
        yield http


async def test_consent_page_names_the_app_the_user_and_the_scopes(
    consent_http: httpx.AsyncClient,
) -> None:
    http = consent_http
    page = await Flow(http).authorize(scope="openid profile email member:basic:read")
    assert page.status_code == 200
    assert "<title>Authorize Demo App</title>" in page.text
    assert "Mock User" in page.text
    assert "See your email address" in page.text
    assert "member:basic:read" in page.text
    assert ">Approve</button>" in page.text
    assert ">Deny</button>" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert not re.search(r'(src|href)="https?:', page.text)


async def test_consent_approve_redirects_with_a_code_that_works(
    consent_http: httpx.AsyncClient,
) -> None:
    http = consent_http
    flow = Flow(http)
    page = await flow.authorize(state="st-4")
    answer = {"flow": _flow_id(page.text), "decision": "approve"}
    approved = await http.post("/oauth/consent", data=answer)
    assert approved.status_code == 303
    query = redirect_query(approved)
    assert query["state"] == "st-4"
    assert (await flow.exchange(query["code"])).status_code == 200
    again = await http.post("/oauth/consent", data=answer)
    assert again.status_code == 400, "a consent flow is answered once"


async def test_consent_deny_redirects_with_access_denied(consent_http: httpx.AsyncClient) -> None:
    http = consent_http
    page = await Flow(http).authorize(state="st-5")
    answer = {"flow": _flow_id(page.text), "decision": "deny"}
    query = redirect_query(await http.post("/oauth/consent", data=answer))
    assert query["error"] == "access_denied"
    assert query["state"] == "st-5"
    assert "code" not in query


async def test_a_guessed_consent_flow_id_is_refused(consent_http: httpx.AsyncClient) -> None:
    http = consent_http
    response = await http.post("/oauth/consent", data={"flow": "abc", "decision": "approve"})
    assert response.status_code == 400
    assert "location" not in response.headers
