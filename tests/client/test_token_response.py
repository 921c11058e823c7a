"""Token responses: what a well-formed one gives, and every malformed shape refused."""

from __future__ import annotations

import calendar
from collections.abc import Callable

import httpx
import pytest
import respx
from client_support import TOKEN_URL, token_body

from whop_oauth import InvalidResponseError, OAuthClient, Token
from whop_oauth._token_response import parse_retry_after, parse_token_response

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
    body = token_body(foo="bar", nested={"a": [1, 2]}, user_id="user_1")

    token = parse_token_response(response(json=body), received_at=0.0)

    assert token.access_token == "at_1"


def test_the_scope_string_becomes_a_tuple_without_duplicates() -> None:
    body = token_body(scope="openid  profile openid email")

    token = parse_token_response(response(json=body), received_at=0.0)

    assert token.scopes == ("openid", "profile", "email")


def test_a_missing_scope_means_the_requested_one() -> None:
    token = parse_token_response(
        response(json=token_body(scope=None)), received_at=0.0, requested_scope=("openid",)
    )

    assert token.scopes == ("openid",)


def test_the_company_id_of_the_grant_is_kept() -> None:
    token = parse_token_response(response(json=token_body()), received_at=0.0, company_id="biz_1")

    assert token.company_id == "biz_1"


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
