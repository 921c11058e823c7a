"""Parsing the callback: state, iss (RFC 9207), duplicates, provider errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from client_support import ISSUER, METADATA
from starlette.datastructures import QueryParams

from whop_oauth import (
    AuthorizationDenied,
    AuthorizationRequest,
    AuthorizationResponseError,
    InvalidCallbackError,
    IssuerMismatchError,
    OAuthClient,
    StateMismatchError,
)

Make = Callable[..., OAuthClient]
CODE = "code-abc-123"


@pytest.fixture
def client(make_client: Make) -> OAuthClient:
    return make_client()


@pytest.fixture
def flow(client: OAuthClient) -> AuthorizationRequest:
    return client.authorization_request()


def test_the_code_comes_back_when_state_matches(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    assert client.parse_callback({"code": CODE, "state": flow.state}, flow) == CODE


@pytest.mark.parametrize("shape", ["str", "str?", "mapping", "pairs", "starlette"])
def test_every_supported_query_shape_gives_the_code(
    client: OAuthClient, flow: AuthorizationRequest, shape: str
) -> None:
    pairs = [("code", CODE), ("state", flow.state), ("iss", ISSUER)]
    params = {
        "str": urlencode(pairs),
        "str?": "?" + urlencode(pairs),
        "mapping": dict(pairs),
        "pairs": pairs,
        "starlette": QueryParams(urlencode(pairs)),
    }[shape]

    assert client.parse_callback(params, flow) == CODE


def test_a_missing_state_is_refused(client: OAuthClient, flow: AuthorizationRequest) -> None:
    with pytest.raises(StateMismatchError):
        client.parse_callback({"code": CODE}, flow)


@pytest.mark.parametrize("state", ["", "wrong", "é-non-ascii"])
def test_a_wrong_state_is_refused(
    client: OAuthClient, flow: AuthorizationRequest, state: str
) -> None:
    with pytest.raises(StateMismatchError):
        client.parse_callback({"code": CODE, "state": state}, flow)


def test_a_callback_meant_for_another_browsers_flow_is_refused(client: OAuthClient) -> None:
    victim_flow = client.authorization_request()
    attacker_flow = client.authorization_request()

    with pytest.raises(StateMismatchError):
        client.parse_callback({"code": CODE, "state": attacker_flow.state}, victim_flow)


def test_an_error_with_a_wrong_state_is_a_state_error_not_a_forged_message(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    params = {"error": "access_denied", "error_description": "Call +1 555 for help"}

    with pytest.raises(StateMismatchError):
        client.parse_callback(params, flow)


def test_access_denied_carries_the_providers_description(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    params = {
        "error": "access_denied",
        "error_description": "The user said no",
        "state": flow.state,
    }

    with pytest.raises(AuthorizationDenied) as caught:
        client.parse_callback(params, flow)

    assert caught.value.error == "access_denied"
    assert caught.value.error_description == "The user said no"
    assert str(caught.value) == "access_denied: The user said no"


def test_a_huge_error_description_is_truncated(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    params = {"error": "server_error", "error_description": "x" * 5000, "state": flow.state}

    with pytest.raises(AuthorizationDenied) as caught:
        client.parse_callback(params, flow)

    assert caught.value.error_description == "x" * 500
    assert caught.value.error_uri is None


def test_a_description_at_the_cap_is_kept_whole(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    text = "abcde" * 100  # 500 characters: nothing to cut
    params = {"error": "server_error", "error_description": text, "state": flow.state}

    with pytest.raises(AuthorizationDenied) as caught:
        client.parse_callback(params, flow)

    assert caught.value.error_description == text


def test_the_error_code_is_cut_at_100_characters(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    params = {"error": "e" * 100 + "TAIL", "state": flow.state}

    with pytest.raises(AuthorizationDenied) as caught:
        client.parse_callback(params, flow)

    assert caught.value.error == "e" * 100
    assert caught.value.error_description is None


def test_the_error_uri_is_carried_and_a_blank_one_is_none(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    uri = "https://idp.test/errors/denied"
    for given, expected in ((uri, uri), ("", None)):
        params = {"error": "access_denied", "error_uri": given, "state": flow.state}
        with pytest.raises(AuthorizationDenied) as caught:
            client.parse_callback(params, flow)
        assert caught.value.error_uri == expected


def test_a_blank_error_is_still_a_denial_named_unknown_error(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    with pytest.raises(AuthorizationDenied) as caught:
        client.parse_callback(f"code={CODE}&error=&state={flow.state}", flow)

    assert caught.value.error == "unknown_error"
    assert str(caught.value) == "unknown_error"


def test_a_missing_code_is_refused(client: OAuthClient, flow: AuthorizationRequest) -> None:
    with pytest.raises(InvalidCallbackError, match="no code"):
        client.parse_callback({"state": flow.state, "code": ""}, flow)


@pytest.mark.parametrize("name", ["code", "state", "iss", "error"])
def test_a_duplicated_parameter_is_refused(
    client: OAuthClient, flow: AuthorizationRequest, name: str
) -> None:
    pairs = [("code", CODE), ("state", flow.state), ("iss", ISSUER), ("error", "x")]
    pairs.append((name, dict(pairs)[name]))

    with pytest.raises(InvalidCallbackError, match=name):
        client.parse_callback(QueryParams(urlencode(pairs)), flow)
    with pytest.raises(InvalidCallbackError, match=name):
        client.parse_callback(urlencode(pairs), flow)


@pytest.mark.parametrize("name", ["state", "iss", "code"])
@pytest.mark.parametrize("blank_first", [True, False], ids=["blank-first", "blank-last"])
def test_a_blank_duplicate_in_a_raw_query_is_refused(
    client: OAuthClient, flow: AuthorizationRequest, name: str, blank_first: bool
) -> None:
    pairs = [("code", CODE), ("state", flow.state), ("iss", ISSUER)]
    blank = (name, "")
    pairs = [blank, *pairs] if blank_first else [*pairs, blank]
    query = urlencode(pairs)
    assert f"{name}=&" in query + "&"  # the blank really is in the raw query

    with pytest.raises(InvalidCallbackError) as caught:
        client.parse_callback(query, flow)

    assert str(caught.value) == f"the callback repeats the {name!r} parameter"


@pytest.mark.parametrize("shape", ["str", "starlette", "pairs"])
def test_a_blank_iss_is_a_wrong_issuer_not_a_missing_one(
    client: OAuthClient, flow: AuthorizationRequest, shape: str
) -> None:
    # The provider does not promise iss, so a *missing* one would pass: a blank one must not.
    assert not flow.authorization_response_iss_required
    pairs = [("code", CODE), ("state", flow.state), ("iss", "")]
    params = {"str": urlencode(pairs), "starlette": QueryParams(urlencode(pairs)), "pairs": pairs}

    with pytest.raises(IssuerMismatchError):
        client.parse_callback(params[shape], flow)


def test_a_blank_state_in_a_raw_query_is_a_missing_state(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    with pytest.raises(StateMismatchError) as caught:
        client.parse_callback(f"code={CODE}&state=", flow)

    assert str(caught.value) == "the callback has no state"


def test_unknown_parameters_are_ignored_even_when_repeated(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    query = urlencode([("code", CODE), ("state", flow.state), ("utm", "a"), ("utm", "b")])

    assert client.parse_callback(query, flow) == CODE


@pytest.mark.parametrize("name", ["access_token", "id_token"])
def test_front_channel_tokens_are_refused_in_a_code_flow(
    client: OAuthClient, flow: AuthorizationRequest, name: str
) -> None:
    with pytest.raises(InvalidCallbackError, match=name):
        client.parse_callback({"code": CODE, "state": flow.state, name: "eyJ..."}, flow)


def test_an_oversized_query_is_refused(client: OAuthClient, flow: AuthorizationRequest) -> None:
    with pytest.raises(InvalidCallbackError, match="too large"):
        client.parse_callback({"code": "c" * 20_000, "state": flow.state}, flow)
    many = [(f"p{i}", "v") for i in range(100)] + [("code", CODE), ("state", flow.state)]
    with pytest.raises(InvalidCallbackError, match="too large"):
        client.parse_callback(many, flow)


def test_the_size_limits_are_64_parameters_and_16384_characters(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    base = [("code", CODE), ("state", flow.state)]
    used = sum(len(k) + len(v) for k, v in base)
    at_count_limit = base + [(f"p{i}", "v") for i in range(62)]
    at_size_limit = [*base, ("pad", "x" * (16_384 - used - 3))]

    assert client.parse_callback(at_count_limit, flow) == CODE
    assert client.parse_callback(at_size_limit, flow) == CODE
    for over in (
        [*at_count_limit, ("p62", "v")],
        [*base, ("pad", "x" * (16_384 - used - 2))],
    ):
        with pytest.raises(InvalidCallbackError) as caught:
            client.parse_callback(over, flow)
        assert str(caught.value) == "the callback query is too large"


def test_pairs_that_are_not_strings_are_refused(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    with pytest.raises(InvalidCallbackError):
        client.parse_callback([("code", 1), ("state", flow.state)], flow)  # type: ignore[list-item]


@pytest.mark.parametrize(
    "bad",
    [[("code", CODE, "x")], [("code",)], ["code"], [["code", CODE]], [(b"code", b"c")]],
    ids=["triple", "single", "bare-string", "list-pair", "bytes"],
)
def test_anything_but_pairs_of_strings_is_refused_with_a_clear_message(
    client: OAuthClient, flow: AuthorizationRequest, bad: list[object]
) -> None:
    with pytest.raises(InvalidCallbackError) as caught:
        client.parse_callback(bad, flow)  # type: ignore[arg-type]

    assert str(caught.value) == "callback parameters must be pairs of strings"


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"code": CODE}, StateMismatchError, "the callback has no state"),
        (
            {"code": CODE, "state": "wrong"},
            StateMismatchError,
            "the callback state does not match this browser's flow",
        ),
        (
            {"code": CODE, "state": "{state}", "iss": "https://other.example"},
            IssuerMismatchError,
            "the callback iss names another issuer than this flow's",
        ),
        ({"state": "{state}"}, InvalidCallbackError, "the callback has no code"),
        (
            {"code": CODE, "state": "{state}", "id_token": "x"},
            InvalidCallbackError,
            "a code flow callback must not carry 'id_token'",
        ),
    ],
)
def test_each_refusal_says_why_in_words(
    client: OAuthClient,
    flow: AuthorizationRequest,
    params: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    filled = {k: v.replace("{state}", flow.state) for k, v in params.items()}

    with pytest.raises(error) as caught:
        client.parse_callback(filled, flow)

    assert type(caught.value) is error
    assert str(caught.value) == message


def test_a_wrong_iss_is_refused(client: OAuthClient, flow: AuthorizationRequest) -> None:
    params = {"code": CODE, "state": flow.state, "iss": "https://attacker.example"}

    with pytest.raises(IssuerMismatchError):
        client.parse_callback(params, flow)


def test_iss_is_compared_exactly_not_normalised(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    for near_miss in (ISSUER + "/", ISSUER.upper(), " " + ISSUER):
        with pytest.raises(IssuerMismatchError):
            client.parse_callback({"code": CODE, "state": flow.state, "iss": near_miss}, flow)


def test_a_missing_iss_is_refused_when_the_provider_promises_it(make_client: Make) -> None:
    strict = dataclasses.replace(METADATA, authorization_response_iss_parameter_supported=True)
    client = make_client(provider=strict)
    flow = client.authorization_request()

    with pytest.raises(IssuerMismatchError) as caught:
        client.parse_callback({"code": CODE, "state": flow.state}, flow)
    assert str(caught.value) == "the callback has no iss, which this provider promises"
    assert client.parse_callback({"code": CODE, "state": flow.state, "iss": ISSUER}, flow) == CODE


def test_a_missing_iss_is_accepted_when_the_provider_does_not_promise_it(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    assert client.parse_callback({"code": CODE, "state": flow.state}, flow) == CODE


def test_an_error_from_another_issuer_is_an_issuer_error(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    params = {"error": "access_denied", "state": flow.state, "iss": "https://attacker.example"}

    with pytest.raises(IssuerMismatchError):
        client.parse_callback(params, flow)


def test_callback_errors_never_echo_the_code_or_state(
    client: OAuthClient, flow: AuthorizationRequest
) -> None:
    attempts = [
        {"code": CODE, "state": "wrong-state-value"},
        {"code": CODE, "state": flow.state, "iss": "https://other.example"},
        {"code": CODE, "state": flow.state, "access_token": "at-secret"},
    ]
    for params in attempts:
        with pytest.raises(AuthorizationResponseError) as caught:
            client.parse_callback(params, flow)
        for secret in (CODE, flow.state, "wrong-state-value", "at-secret", flow.code_verifier):
            assert secret not in str(caught.value)
