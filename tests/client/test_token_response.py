"""Token responses: what a well-formed one gives, and every malformed shape refused."""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable

import httpx
import pytest
import respx
from client_support import TOKEN_URL, token_body

from whop_oauth import (
    InvalidClientError,
    InvalidGrantError,
    InvalidResponseError,
    OAuthClient,
    ProviderError,
    RateLimitedError,
    ServerUnavailableError,
    Token,
)
from whop_oauth._token_response import (
    json_object,
    parse_retry_after,
    parse_token_response,
    raise_for_status,
    split_scope,
)

Make = Callable[..., OAuthClient]
OLD = Token(access_token="at_old", refresh_token="rt_old")


def response(**kwargs: object) -> httpx.Response:
    return httpx.Response(200, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty body"),
        (b"not json", "plain text"),
        (b"<html><body>502 Bad Gateway</body></html>", "an HTML proxy page"),
        (b'{"', "truncated JSON"),
        (b"null", "null"),
        (b"[]", "an array"),
        (b'"a string"', "a JSON string"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[" * 100_000, "absurdly nested"),
        (b'{"token_type": "Bearer"}', "no access_token"),
        (b'{"access_token": "at"}', "no token_type"),
        (b'{"access_token": "", "token_type": "Bearer"}', "an empty access_token"),
        (b'{"access_token": 12, "token_type": "Bearer"}', "a numeric access_token"),
        (b'{"access_token": "at", "token_type": "mac"}', "a mac token"),
        (b'{"access_token": "at", "token_type": "DPoP"}', "a DPoP token"),
        (b'{"access_token": "at", "token_type": ["Bearer"]}', "a list token_type"),
        (b'{"access_token": "at", "token_type": "Bearer", "expires_in": -1}', "negative"),
        (b'{"access_token": "at", "token_type": "Bearer", "expires_in": "soon"}', "a word"),
        (b'{"access_token": "at", "token_type": "Bearer", "expires_in": "-5"}', "neg string"),
        (b'{"access_token": "at", "token_type": "Bearer", "expires_in": true}', "a bool"),
        (b'{"access_token": "at", "token_type": "Bearer", "expires_in": NaN}', "NaN"),
        (b'{"access_token": "at", "token_type": "Bearer", "expires_in": 1e999}', "infinite"),
        (b'{"access_token": "at", "token_type": "Bearer", "expires_in": {}}', "an object"),
        (b'{"access_token": "at", "token_type": "Bearer", "refresh_token": 5}', "numeric rt"),
        (b'{"access_token": "at", "token_type": "Bearer", "scope": 5}', "numeric scope"),
        (b'{"access_token": "at", "token_type": "Bearer", "id_token": {}}', "object id_token"),
    ],
)
async def test_a_malformed_token_response_is_an_invalid_response_error(
    make_client: Make, router: respx.MockRouter, content: bytes, why: str
) -> None:
    router.post(TOKEN_URL).respond(200, content=content)

    with pytest.raises(InvalidResponseError) as caught:
        await make_client().refresh(OLD)

    assert caught.value.response is not None, why
    assert "at_old" not in str(caught.value)
    assert "rt_old" not in str(caught.value)


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_token_type_is_compared_case_insensitively(token_type: str) -> None:
    token = parse_token_response(
        response(json=token_body(token_type=token_type)), received_at=1000.0
    )

    assert token.token_type == "Bearer"


@pytest.mark.parametrize(
    ("expires_in", "expires_at"),
    [(3600, 4600.0), (0, 1000.0), (59.5, 1059.5), ("3600", 4600.0), (None, None)],
)
def test_expires_at_is_receipt_time_plus_expires_in(
    expires_in: object, expires_at: float | None
) -> None:
    token = parse_token_response(
        response(json=token_body(expires_in=expires_in)), received_at=1000.0
    )

    assert token.expires_at == expires_at
    assert token.issued_at == 1000.0


def test_a_token_without_expires_in_never_looks_expired() -> None:
    token = parse_token_response(response(json=token_body(expires_in=None)), received_at=0.0)

    assert not token.is_expired(leeway=60)


def test_unknown_fields_are_ignored() -> None:
    body = token_body(foo="bar", nested={"a": [1, 2]}, user_id="user_1", id_token="eyJ.x.y")

    token = parse_token_response(response(json=body), received_at=10.0)

    assert token == Token(
        access_token="at_1",
        token_type="Bearer",
        expires_at=3610.0,
        refresh_token="rt_1",
        scopes=("openid", "profile", "email"),
        id_token="eyJ.x.y",
        issued_at=10.0,
    )


def test_the_scope_string_becomes_a_tuple_without_duplicates() -> None:
    body = token_body(scope="openid  profile openid email")

    token = parse_token_response(response(json=body), received_at=0.0)

    assert token.scopes == ("openid", "profile", "email")


def test_a_missing_scope_means_the_requested_one() -> None:
    token = parse_token_response(
        response(json=token_body(scope=None)), received_at=0.0, requested_scope=("openid",)
    )

    assert token.scopes == ("openid",)


def test_the_requested_company_is_kept_apart_from_the_one_the_provider_confirms() -> None:
    asked = parse_token_response(response(json=token_body()), received_at=0.0, company_id="biz_1")
    confirmed = parse_token_response(
        response(json=token_body(company_id="biz_2")), received_at=0.0, company_id="biz_1"
    )

    assert (asked.company_id, asked.granted_company_id) == ("biz_1", None)
    assert (confirmed.company_id, confirmed.granted_company_id) == ("biz_1", "biz_2")


async def test_a_token_response_without_refresh_token_or_expiry_still_works(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(200, json={"access_token": "at_2", "token_type": "bearer"})
    client = make_client(scope="profile")  # openid would make an id_token due

    token = await client.exchange_code("c", client.authorization_request())

    assert token.access_token == "at_2"
    assert token.refresh_token is None
    assert token.expires_at is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        ("  7 ", 7.0),
        ("-3", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_a_future_http_date_is_the_time_until_then() -> None:
    now = calendar.timegm((2030, 1, 1, 0, 0, 0))
    header = "Tue, 01 Jan 2030 00:01:00 GMT"

    assert parse_retry_after(header, now=now) == pytest.approx(60.0)


# -- raise_for_status: which typed error a status and body stand for --------------------


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_a_2xx_status_raises_nothing(status: int) -> None:
    assert raise_for_status(answer(status, {"error": "invalid_grant"}), "token") is None


@pytest.mark.parametrize("status", [300, 302, 399])
def test_a_redirect_is_an_invalid_response_naming_the_status(status: int) -> None:
    reply = answer(status, {"error": "invalid_grant"}, Location="https://elsewhere.example/")

    with pytest.raises(InvalidResponseError) as caught:
        raise_for_status(reply, "token")

    assert type(caught.value) is InvalidResponseError
    assert str(caught.value) == f"token: unexpected redirect (HTTP {status})"
    assert caught.value.response is reply


@pytest.mark.parametrize("status", [199, 400, 500])
def test_the_statuses_around_the_2xx_and_3xx_ranges_are_errors_not_redirects(
    status: int,
) -> None:
    reply = answer(status)

    with pytest.raises(ServerUnavailableError) as caught:
        raise_for_status(reply, "token")

    assert str(caught.value) == f"token: HTTP {status} without an OAuth error"
    assert caught.value.response is reply


@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_rate_limit_exceeded_in_the_body_is_rate_limited_whatever_the_status(
    status: int,
) -> None:
    body = {
        "error": "rate_limit_exceeded",
        "error_description": "slow down",
        "error_uri": "https://idp.test/limits",
    }
    reply = answer(status, body, **{"Retry-After": "7"})

    with pytest.raises(RateLimitedError) as caught:
        raise_for_status(reply, "token")

    error = caught.value
    assert (error.error, error.error_description, error.error_uri) == (
        "rate_limit_exceeded",
        "slow down",
        "https://idp.test/limits",
    )
    assert error.response is reply
    assert error.status_code == status
    assert error.retry_after == 7.0


def test_a_bare_429_is_rate_limited_with_the_default_code_and_its_response() -> None:
    reply = answer(429, None, **{"Retry-After": "30"})

    with pytest.raises(RateLimitedError) as caught:
        raise_for_status(reply, "token")

    error = caught.value
    assert (error.error, error.error_description, error.error_uri) == (
        "rate_limit_exceeded",
        None,
        None,
    )
    assert error.response is reply
    assert error.retry_after == 30.0
    assert str(error) == "rate_limit_exceeded (HTTP 429)"


def test_a_429_keeps_the_error_code_description_and_uri_the_provider_sent() -> None:
    body = {"error": "slow_down", "error_description": "later", "error_uri": "https://u.test"}
    reply = answer(429, body)

    with pytest.raises(RateLimitedError) as caught:
        raise_for_status(reply, "token")

    error = caught.value
    assert (error.error, error.error_description, error.error_uri) == (
        "slow_down",
        "later",
        "https://u.test",
    )
    assert error.response is reply
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("invalid_grant", InvalidGrantError),
        ("invalid_client", InvalidClientError),
        ("invalid_request", ProviderError),
        ("unauthorized_client", ProviderError),
    ],
)
def test_an_oauth_error_body_is_the_matching_provider_error_with_all_its_fields(
    code: str, error_type: type[ProviderError]
) -> None:
    body = {"error": code, "error_description": "why", "error_uri": "https://idp.test/e"}
    reply = answer(400, body)

    with pytest.raises(ProviderError) as caught:
        raise_for_status(reply, "token")

    error = caught.value
    assert type(error) is error_type
    assert (error.error, error.error_description, error.error_uri) == (
        code,
        "why",
        "https://idp.test/e",
    )
    assert error.response is reply
    assert str(error) == f"{code}: why (HTTP 400)"


def test_the_error_code_is_cut_at_100_and_the_description_at_500_characters() -> None:
    body = {"error": "e" * 100 + "TAIL", "error_description": "d" * 500 + "TAIL"}

    with pytest.raises(ProviderError) as caught:
        raise_for_status(answer(400, body), "token")

    assert caught.value.error == "e" * 100
    assert caught.value.error_description == "d" * 500


def test_a_description_of_exactly_500_characters_is_kept_whole() -> None:
    text = "abcde" * 100

    with pytest.raises(ProviderError) as caught:
        raise_for_status(answer(400, {"error": "x", "error_description": text}), "token")

    assert caught.value.error_description == text


def test_non_string_description_and_uri_are_dropped_not_kept() -> None:
    body = {"error": "invalid_request", "error_description": 5, "error_uri": ["u"]}

    with pytest.raises(ProviderError) as caught:
        raise_for_status(answer(400, body), "token")

    assert (caught.value.error, caught.value.error_description, caught.value.error_uri) == (
        "invalid_request",
        None,
        None,
    )


@pytest.mark.parametrize(
    "body",
    [{"error": ""}, {"error": 5}, {"error": None}, {"error_description": "x"}, ["invalid_grant"]],
    ids=["empty", "number", "null", "no-error", "array"],
)
def test_a_body_without_a_usable_error_code_is_no_oauth_error(body: object) -> None:
    reply = answer(400, body)

    with pytest.raises(ServerUnavailableError) as caught:
        raise_for_status(reply, "userinfo")

    assert str(caught.value) == "userinfo: HTTP 400 without an OAuth error"
    assert caught.value.response is reply


def test_a_non_json_error_body_is_no_oauth_error() -> None:
    reply = httpx.Response(502, content=b"<html>Bad Gateway</html>")

    with pytest.raises(ServerUnavailableError):
        raise_for_status(reply, "token")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_bearer_challenge_names_the_error_description_and_uri(scheme: str) -> None:
    challenge = (
        f'{scheme} realm="api", error="invalid_token", error_description="expired",'
        ' error_uri="https://idp.test/why"'
    )
    reply = answer(401, None, **{"WWW-Authenticate": challenge})

    with pytest.raises(ProviderError) as caught:
        raise_for_status(reply, "userinfo")

    error = caught.value
    assert type(error) is ProviderError
    assert (error.error, error.error_description, error.error_uri) == (
        "invalid_token",
        "expired",
        "https://idp.test/why",
    )
    assert error.response is reply


def test_a_challenge_description_is_cut_at_500_characters_like_a_body_one() -> None:
    challenge = f'Bearer error="invalid_token", error_description="{"d" * 499}TAIL"'

    with pytest.raises(ProviderError) as caught:
        raise_for_status(answer(401, None, **{"WWW-Authenticate": challenge}), "userinfo")

    assert caught.value.error_description == "d" * 499 + "T"


def test_a_challenge_error_code_is_cut_at_100_characters() -> None:
    reply = answer(401, None, **{"WWW-Authenticate": f'Bearer error="{"e" * 150}"'})

    with pytest.raises(ProviderError) as caught:
        raise_for_status(reply, "userinfo")

    assert caught.value.error == "e" * 100
    assert caught.value.error_description is None
    assert caught.value.error_uri is None


@pytest.mark.parametrize(
    "challenge",
    ['Basic error="invalid_token"', 'Bearer realm="api"', 'Bearer error=""', "Bearer"],
)
def test_a_challenge_that_is_not_a_bearer_error_is_no_oauth_error(challenge: str) -> None:
    with pytest.raises(ServerUnavailableError):
        raise_for_status(answer(401, None, **{"WWW-Authenticate": challenge}), "userinfo")


def test_the_json_body_wins_over_the_challenge() -> None:
    reply = answer(
        401, {"error": "invalid_client"}, **{"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )

    with pytest.raises(InvalidClientError):
        raise_for_status(reply, "token")


def test_a_bare_status_is_read_as_the_code_it_is_mapped_to() -> None:
    mapping = {401: "invalid_token"}
    reply = answer(401)

    with pytest.raises(ProviderError) as caught:
        raise_for_status(reply, "userinfo", bare_status_errors=mapping)

    assert type(caught.value) is ProviderError
    assert (caught.value.error, caught.value.error_description, caught.value.error_uri) == (
        "invalid_token",
        None,
        None,
    )
    assert caught.value.response is reply
    with pytest.raises(ServerUnavailableError):  # a status the mapping does not name
        raise_for_status(answer(403), "userinfo", bare_status_errors=mapping)
    with pytest.raises(InvalidGrantError):  # a body names the error itself
        raise_for_status(
            answer(401, {"error": "invalid_grant"}), "userinfo", bare_status_errors=mapping
        )


def test_a_bare_status_mapped_to_rate_limit_exceeded_is_rate_limited() -> None:
    reply = answer(403, None, **{"Retry-After": "3"})

    with pytest.raises(RateLimitedError) as caught:
        raise_for_status(reply, "api", bare_status_errors={403: "rate_limit_exceeded"})

    assert caught.value.retry_after == 3.0
    assert caught.value.response is reply


# -- json_object, split_scope, expires_in -------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"nope", "jwks: the response is not JSON (HTTP 200)"),
        (b"[" * 100_000, "jwks: the response is not JSON (HTTP 200)"),
        (b"[1]", "jwks: the response is JSON but not an object"),
    ],
    ids=["text", "deep", "array"],
)
def test_json_object_refuses_anything_but_an_object_and_keeps_the_response(
    content: bytes, message: str
) -> None:
    reply = httpx.Response(200, content=content)

    with pytest.raises(InvalidResponseError) as caught:
        json_object(reply, "jwks")

    assert str(caught.value) == message
    assert caught.value.response is reply


def test_json_object_returns_the_object() -> None:
    assert json_object(httpx.Response(200, json={"a": [1]}), "x") == {"a": [1]}


def test_a_scope_list_is_kept_in_order_without_duplicates() -> None:
    token = parse_token_response(response(json=token_body(scope=["b", "a", "b"])), received_at=0.0)

    assert token.scopes == ("b", "a")


@pytest.mark.parametrize(
    "scope", [["a", 1], {"a": 1}, 5, None], ids=["mixed", "obj", "int", "none"]
)
def test_a_scope_that_is_not_strings_is_refused_with_the_response(scope: object) -> None:
    reply = response(json=token_body(scope="x"))

    with pytest.raises(InvalidResponseError) as caught:
        split_scope(scope, reply)

    assert str(caught.value) == "the scope field is not a string"
    assert caught.value.response is reply


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [(2**53 - 1, float(2**53 - 1)), (" 60 ", 60.0), ("9" * 12, float("9" * 12)), (0.0, 0.0)],
)
def test_expires_in_at_its_limits_is_read(expires_in: object, expected: float) -> None:
    token = parse_token_response(response(json=token_body(expires_in=expires_in)), received_at=0.0)

    assert token.expires_at == expected


@pytest.mark.parametrize("expires_in", [2**53, -(2**53), "9" * 13, "1.5", "", -0.5])
def test_expires_in_beyond_its_limits_is_refused(expires_in: object) -> None:
    reply = response(json=token_body(expires_in=expires_in))

    with pytest.raises(InvalidResponseError) as caught:
        parse_token_response(reply, received_at=0.0)

    assert str(caught.value) == "token response: expires_in is not a non-negative number"
    assert caught.value.response is reply


@pytest.mark.parametrize("name", ["access_token", "refresh_token", "id_token", "company_id"])
def test_an_empty_or_non_string_optional_field_names_itself(name: str) -> None:
    for value in ("", 7):
        reply = response(json=token_body(**{name: value}))
        with pytest.raises(InvalidResponseError) as caught:
            parse_token_response(reply, received_at=0.0)
        assert str(caught.value) == f"token response: {name} is not a string"
        assert caught.value.response is reply


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html>", "token response: the response is not JSON (HTTP 200)"),
        (b'"at_1"', "token response: the response is JSON but not an object"),
    ],
)
def test_a_token_response_that_is_no_json_object_says_so(content: bytes, message: str) -> None:
    with pytest.raises(InvalidResponseError) as caught:
        parse_token_response(response(content=content), received_at=0.0)

    assert str(caught.value) == message


def test_the_required_fields_and_the_bearer_type_have_their_own_messages() -> None:
    missing = response(json={"token_type": "Bearer"})
    with pytest.raises(InvalidResponseError) as caught:
        parse_token_response(missing, received_at=0.0)
    assert str(caught.value) == "token response: access_token and token_type are required"
    assert caught.value.response is missing

    mac = response(json=token_body(token_type="mac"))
    with pytest.raises(InvalidResponseError) as caught:
        parse_token_response(mac, received_at=0.0)
    assert str(caught.value) == "token response: token_type is not Bearer"
    assert caught.value.response is mac


def test_retry_after_as_a_date_without_a_zone_is_ignored() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 +0000", now=0.0) == pytest.approx(
        1445412480.0
    )
