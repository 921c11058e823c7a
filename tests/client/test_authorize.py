"""Building the authorization request: URL, PKCE S256, fresh per-flow secrets."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from client_support import CLIENT_ID, ISSUER, METADATA, REDIRECT_URI

from whop_oauth import AuthorizationRequest, ConfigurationError, InvalidValueError, OAuthClient

Make = Callable[..., OAuthClient]


def query(url: str) -> dict[str, str]:
    parsed = parse_qs(urlsplit(url).query, strict_parsing=True)
    assert all(len(v) == 1 for v in parsed.values())
    return {k: v[0] for k, v in parsed.items()}


def test_the_url_carries_every_parameter_of_a_pkce_code_flow(make_client: Make) -> None:
    flow = make_client().authorization_request()

    assert flow.url.startswith(f"{ISSUER}/oauth/authorize?")
    assert query(flow.url) == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": create_s256_code_challenge(flow.code_verifier),
        "code_challenge_method": "S256",
    }
    assert flow.issuer == ISSUER
    assert flow.redirect_uri == REDIRECT_URI
    assert flow.scope == ("openid", "profile", "email")


def test_the_verifier_is_43_to_128_unreserved_characters_and_never_in_the_url(
    make_client: Make,
) -> None:
    flow = make_client().authorization_request()

    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", flow.code_verifier)
    assert flow.code_verifier not in flow.url


def test_state_nonce_and_verifier_are_fresh_for_every_flow(make_client: Make) -> None:
    client = make_client()
    flows = [client.authorization_request() for _ in range(20)]

    for field in ("state", "nonce", "code_verifier"):
        assert len({getattr(flow, field) for flow in flows}) == 20, field


def test_company_id_scope_and_extra_params_pass_through(make_client: Make) -> None:
    flow = make_client().authorization_request(
        scope=["openid", "member:basic:read"],
        company_id="biz_123",
        extra_params={"prompt": "consent"},
    )

    params = query(flow.url)
    assert params["company_id"] == "biz_123"
    assert params["scope"] == "openid member:basic:read"
    assert params["prompt"] == "consent"
    assert flow.company_id == "biz_123"
    assert flow.scope == ("openid", "member:basic:read")


@pytest.mark.parametrize("name", ["state", "code_challenge_method", "redirect_uri", "company_id"])
def test_extra_params_cannot_override_what_the_library_sets(make_client: Make, name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        make_client().authorization_request(extra_params={name: "x"})


def test_a_provider_offering_only_plain_pkce_is_refused(make_client: Make) -> None:
    plain_only = dataclasses.replace(METADATA, code_challenge_methods_supported=("plain",))

    with pytest.raises(ConfigurationError, match="S256"):
        make_client(provider=plain_only)


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%252F%252Fevil.example",
        "/ok\r\nSet-Cookie: x",
        "",
    ],
)
def test_next_path_that_could_leave_the_site_is_refused(make_client: Make, next_path: str) -> None:
    with pytest.raises(ConfigurationError):
        make_client().authorization_request(next_path=next_path)


def test_a_local_next_path_is_kept_with_the_flow(make_client: Make) -> None:
    flow = make_client().authorization_request(next_path="/dashboard?tab=2")

    assert flow.next_path == "/dashboard?tab=2"
    assert "dashboard" not in flow.url


def test_the_iss_requirement_is_taken_from_the_metadata(make_client: Make) -> None:
    strict = dataclasses.replace(METADATA, authorization_response_iss_parameter_supported=True)

    assert make_client(provider=strict).authorization_request().authorization_response_iss_required
    assert not make_client().authorization_request().authorization_response_iss_required


def test_a_flow_survives_a_round_trip_through_json(make_client: Make) -> None:
    flow = make_client().authorization_request(company_id="biz_1", next_path="/x")

    again = AuthorizationRequest.from_dict(json.loads(json.dumps(flow.to_dict())))

    assert again == flow


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        [],
        {},
        {"url": "x"},
        {"scope": "openid"},
        "not a dict",
    ],
)
def test_from_dict_refuses_garbage_with_value_error(garbage: object) -> None:
    with pytest.raises(InvalidValueError):
        AuthorizationRequest.from_dict(garbage)  # type: ignore[arg-type]


def test_from_dict_refuses_wrongly_typed_fields(make_client: Make) -> None:
    data = make_client().authorization_request().to_dict()

    bad_fields = [
        ("state", 1),
        ("authorization_response_iss_required", "yes"),
        ("company_id", 5),
        ("nonce", ""),
    ]
    for field, bad in bad_fields:
        with pytest.raises(InvalidValueError, match=field):
            AuthorizationRequest.from_dict({**data, field: bad})


def test_a_flow_saved_with_the_old_created_at_field_still_reads_back(make_client: Make) -> None:
    flow = make_client().authorization_request()

    assert AuthorizationRequest.from_dict({**flow.to_dict(), "created_at": 1.0}) == flow


def test_the_repr_of_a_flow_hides_the_verifier_and_nonce(make_client: Make) -> None:
    flow = make_client().authorization_request()

    assert flow.code_verifier not in repr(flow)
    assert flow.nonce not in repr(flow)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://app.example/callback",
        "https://app.example/callback#fragment",
        "ftp://app.example/callback",
        "not a url",
    ],
)
def test_redirect_uri_must_be_https_without_fragment(make_client: Make, redirect_uri: str) -> None:
    with pytest.raises(ConfigurationError):
        make_client(redirect_uri=redirect_uri)


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:8000/cb", "http://localhost:8000/cb", "http://[::1]:8000/cb"],
)
def test_http_redirect_uri_is_allowed_on_loopback(make_client: Make, redirect_uri: str) -> None:
    assert make_client(redirect_uri=redirect_uri).redirect_uri == redirect_uri


def test_http_endpoints_are_refused_unless_explicitly_allowed(make_client: Make) -> None:
    insecure = dataclasses.replace(METADATA, token_endpoint="http://idp.test/oauth/token")

    with pytest.raises(ConfigurationError, match="token_endpoint"):
        make_client(provider=insecure)
    assert make_client(provider=insecure, allow_insecure_http=True).metadata is insecure


@pytest.mark.parametrize("scope", ['openid pro"file', ["openid", ""], ["open id"]])
def test_malformed_scopes_are_refused(make_client: Make, scope: object) -> None:
    with pytest.raises(ConfigurationError):
        make_client(scope=scope)
