"""OAuthClient configuration, lifecycle, and secrets that must never print."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
import respx
from client_support import CLIENT_ID, ISSUER, JWKS_URL, REDIRECT_URI, SECRET, TOKEN_URL, form

from whop_oauth import (
    ConfigurationError,
    OAuthClient,
    Token,
    TokenKey,
    WhopOAuthError,
)

Make = Callable[..., OAuthClient]


@pytest.mark.parametrize(
    ("secret", "method", "expected"),
    [
        (None, None, "none"),
        (SECRET, None, "client_secret_post"),
        (SECRET, "client_secret_basic", "client_secret_basic"),
        (SECRET, "client_secret_post", "client_secret_post"),
        (None, "none", "none"),
    ],
)
async def test_the_auth_method_defaults_to_post_with_a_secret_and_none_without(
    make_client: Make,
    router: respx.MockRouter,
    secret: str | None,
    method: str | None,
    expected: str,
) -> None:
    route = router.post(TOKEN_URL).respond(200, json={"access_token": "a", "token_type": "Bearer"})
    client = make_client(client_secret=secret, token_endpoint_auth_method=method)

    await client.refresh(Token(access_token="a", refresh_token="r"))

    request = route.calls.last.request
    used = (
        "client_secret_basic"
        if request.headers.get("Authorization", "").startswith("Basic ")
        else "client_secret_post"
        if "client_secret" in form(request)
        else "none"
    )
    assert used == expected


@pytest.mark.parametrize(
    ("secret", "method"),
    [
        (SECRET, "none"),
        (None, "client_secret_post"),
        (None, "client_secret_basic"),
        (SECRET, "private_key_jwt"),
    ],
)
def test_auth_methods_that_cannot_work_are_configuration_errors(
    make_client: Make, secret: str | None, method: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_client(client_secret=secret, token_endpoint_auth_method=method)

    assert SECRET not in str(caught.value)
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize(
    "options",
    [
        {"client_id": ""},
        {"token_request_encoding": "xml"},
        {"timeout": 0},
        {"max_retries": -1},
        {"max_response_bytes": 0},
    ],
)
def test_impossible_options_are_configuration_errors(
    make_client: Make, options: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        make_client(**options)


def test_the_repr_shows_client_and_issuer_but_never_the_secret(make_client: Make) -> None:
    client = make_client(client_secret=SECRET)

    assert repr(client) == f"OAuthClient(client_id={CLIENT_ID!r}, issuer={ISSUER!r})"
    assert SECRET not in repr(client)
    assert SECRET not in repr(client.__dict__)
    assert SECRET not in str(vars(client))


def test_token_keys_name_this_client_and_issuer(make_client: Make) -> None:
    client = make_client()

    assert client.token_key("user_1", "biz_1") == TokenKey("biz_1", "user_1", ISSUER, CLIENT_ID)
    assert client.token_key("user_1").tenant == "default"


async def test_a_client_it_made_itself_is_closed_on_exit() -> None:
    async with OAuthClient(client_id="c", redirect_uri=REDIRECT_URI) as client:
        http = client._http
    assert http.is_closed


async def test_an_injected_http_client_is_left_open() -> None:
    async with httpx.AsyncClient() as http:
        async with OAuthClient(client_id="c", redirect_uri=REDIRECT_URI, http_client=http):
            pass
        assert not http.is_closed


async def test_logs_and_errors_never_contain_secrets_tokens_codes_or_verifiers(
    make_client: Make,
    router: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    make_id_token: Callable[..., str],
    jwks: dict[str, object],
) -> None:
    caplog.set_level(logging.DEBUG, logger="whop_oauth")
    client = make_client(client_secret=SECRET)
    flow = client.authorization_request()
    router.get(JWKS_URL).respond(200, json=jwks)
    id_token = make_id_token(nonce=flow.nonce)
    router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(
                200,
                json={
                    "access_token": "AT-SECRET",
                    "refresh_token": "RT-SECRET",
                    "token_type": "Bearer",
                    "id_token": id_token,
                },
            ),
            httpx.Response(400, json={"error": "invalid_grant"}),
            httpx.ReadTimeout("timed out"),
        ]
    )
    errors: list[BaseException] = []

    try:
        await client.exchange_code("CODE-SECRET", flow)
    except WhopOAuthError as exc:  # the exchange is not retried on 503
        errors.append(exc)
    token = await client.exchange_code("CODE-SECRET", flow)
    for _ in range(2):
        try:
            await client.refresh(token)
        except WhopOAuthError as exc:
            errors.append(exc)

    assert len(errors) == 3
    secrets = [SECRET, "AT-SECRET", "RT-SECRET", "CODE-SECRET", flow.code_verifier, id_token]
    assert any("token" in r.getMessage() or "exchange" in r.getMessage() for r in caplog.records)
    for text in [caplog.text, repr(token), repr(flow), *map(str, errors), *map(repr, errors)]:
        for secret in secrets:
            assert secret not in text
