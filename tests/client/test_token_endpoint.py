"""Code exchange and refresh: what is sent, what comes back, what is (never) retried."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
from client_support import (
    AUTH_METHODS,
    CLIENT_ID,
    REDIRECT_URI,
    SECRET,
    TOKEN_URL,
    assert_client_auth,
    form,
    token_body,
)

from whop_oauth import (
    InvalidCallbackError,
    InvalidClientError,
    InvalidGrantError,
    InvalidResponseError,
    IssuerMismatchError,
    NoGrantError,
    OAuthClient,
    ProviderError,
    RateLimitedError,
    ServerUnavailableError,
    SignInRequired,
    Token,
    TransportError,
    whop_metadata,
)

Make = Callable[..., OAuthClient]
# Without openid no id_token is due, so token_body() (which has none) is a whole answer.
NO_OPENID = "profile email"


def refreshable(**overrides: object) -> Token:
    values: dict[str, object] = {
        "access_token": "at_old",
        "refresh_token": "rt_old",
        "expires_at": time.time() - 1,
        "scopes": ("openid", "profile"),
    }
    values.update(overrides)
    return Token(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "secret"), AUTH_METHODS)
async def test_code_exchange_sends_the_code_verifier_and_client_auth(
    make_client: Make, router: respx.MockRouter, method: str, secret: str | None
) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body())
    client = make_client(client_secret=secret, token_endpoint_auth_method=method, scope=NO_OPENID)
    flow = client.authorization_request(company_id="biz_1")

    before = time.time()
    token = await client.exchange_code("the-code", flow)

    request = route.calls.last.request
    body = form(request)
    assert {k: body[k] for k in ("grant_type", "code", "redirect_uri", "code_verifier")} == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": flow.code_verifier,
    }
    assert set(body) - {"client_secret"} == {
        "grant_type", "code", "redirect_uri", "code_verifier", "client_id"
    }  # fmt: skip
    assert_client_auth(request, method, secret)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token.access_token == "at_1"
    assert token.refresh_token == "rt_1"
    assert token.company_id == "biz_1"
    assert token.scopes == ("openid", "profile", "email")
    assert token.expires_at is not None
    assert before + 3600 <= token.expires_at <= time.time() + 3600


@pytest.mark.parametrize(("method", "secret"), AUTH_METHODS)
async def test_refresh_sends_the_refresh_token_company_and_client_auth(
    make_client: Make, router: respx.MockRouter, method: str, secret: str | None
) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body(access_token="at_new"))
    client = make_client(client_secret=secret, token_endpoint_auth_method=method)

    token = await client.refresh(refreshable(company_id="biz_9"))

    request = route.calls.last.request
    body = form(request)
    assert body["grant_type"] == "refresh_token"
    assert body["refresh_token"] == "rt_old"
    assert body["company_id"] == "biz_9"
    assert_client_auth(request, method, secret)
    assert token.access_token == "at_new"
    assert token.company_id == "biz_9"


async def test_refresh_without_a_company_sends_no_company_id(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body())

    await make_client().refresh(refreshable())

    assert "company_id" not in form(route.calls.last.request)


async def test_a_rotated_refresh_token_replaces_the_old_one(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(200, json=token_body(refresh_token="rt_new", scope=None))

    token = await make_client().refresh(refreshable())

    assert token.refresh_token == "rt_new"
    assert token.scopes == ("openid", "profile")  # none returned: the grant's scopes stay


async def test_the_old_refresh_token_is_kept_when_none_is_returned(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(200, json=token_body(refresh_token=None))

    token = await make_client().refresh(refreshable())

    assert token.refresh_token == "rt_old"
    assert token.access_token == "at_1"


async def test_refreshing_a_token_without_refresh_token_asks_for_sign_in(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body())

    with pytest.raises(NoGrantError):
        await make_client().refresh(Token(access_token="at"))

    assert route.call_count == 0


async def test_invalid_grant_on_refresh_means_sign_in_again(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(
        400, json={"error": "invalid_grant", "error_description": "refresh token revoked"}
    )

    with pytest.raises(InvalidGrantError) as caught:
        await make_client().refresh(refreshable())

    assert isinstance(caught.value, SignInRequired)
    assert caught.value.error == "invalid_grant"
    assert caught.value.error_description == "refresh token revoked"
    assert caught.value.status_code == 400
    assert "rt_old" not in str(caught.value)


async def test_a_bare_401_on_refresh_means_sign_in_again(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(401)

    with pytest.raises(InvalidGrantError):
        await make_client().refresh(refreshable())


@pytest.mark.parametrize(("method", "secret"), AUTH_METHODS)
async def test_invalid_client_is_its_own_error(
    make_client: Make, router: respx.MockRouter, method: str, secret: str | None
) -> None:
    router.post(TOKEN_URL).respond(
        401,
        json={
            "error": "invalid_client",
            "error_description": "client_secret lacks oauth:token_exchange permission",
            "error_uri": "https://docs.example/errors",
        },
    )
    client = make_client(client_secret=secret, token_endpoint_auth_method=method)

    with pytest.raises(InvalidClientError) as caught:
        await client.exchange_code("the-code", client.authorization_request())

    assert caught.value.error_uri == "https://docs.example/errors"
    assert caught.value.response is not None
    assert SECRET not in str(caught.value)


async def test_other_oauth_errors_keep_their_fields(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(400, json={"error": "invalid_request"})
    client = make_client()

    with pytest.raises(ProviderError) as caught:
        await client.exchange_code("the-code", client.authorization_request())

    assert type(caught.value) is ProviderError
    assert caught.value.error == "invalid_request"
    assert caught.value.error_description is None


async def test_the_json_encoding_sends_the_same_fields_as_json(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body())
    client = make_client(client_secret=SECRET, token_request_encoding="json", scope=NO_OPENID)
    flow = client.authorization_request()

    await client.exchange_code("the-code", flow)

    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": flow.code_verifier,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("connection reset"),
    ],
)
async def test_a_code_exchange_is_never_sent_twice_once_it_may_have_arrived(
    make_client: Make, router: respx.MockRouter, failure: Exception
) -> None:
    route = router.post(TOKEN_URL).mock(side_effect=[failure, httpx.Response(200, json={})])
    client = make_client()

    with pytest.raises(TransportError) as caught:
        await client.exchange_code("the-code", client.authorization_request())

    assert route.call_count == 1
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_code_exchange_is_not_retried_on_error_statuses(
    make_client: Make, router: respx.MockRouter, status: int
) -> None:
    route = router.post(TOKEN_URL).respond(status)
    client = make_client()

    with pytest.raises((RateLimitedError, ServerUnavailableError)):
        await client.exchange_code("the-code", client.authorization_request())

    assert route.call_count == 1


async def test_a_code_exchange_is_retried_when_the_connection_was_never_made(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(TOKEN_URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=token_body())]
    )
    client = make_client(scope=NO_OPENID)

    token = await client.exchange_code("the-code", client.authorization_request())

    assert token.access_token == "at_1"
    assert route.call_count == 2


async def test_refresh_is_retried_on_503_then_succeeds(
    make_client: Make, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post(TOKEN_URL).mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=token_body())]
    )

    token = await make_client().refresh(refreshable())

    assert token.access_token == "at_1"
    assert route.call_count == 2
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 8


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("t"), httpx.RemoteProtocolError("reset"), httpx.ReadError("r")]
)
async def test_refresh_is_not_replayed_after_a_failure_once_sent(
    make_client: Make, router: respx.MockRouter, failure: Exception
) -> None:
    route = router.post(TOKEN_URL).mock(
        side_effect=[failure, httpx.Response(200, json=token_body())]
    )

    with pytest.raises(TransportError):
        await make_client().refresh(refreshable())

    assert route.call_count == 1


async def test_refresh_is_retried_on_connect_errors_up_to_max_retries(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(TOKEN_URL).mock(side_effect=httpx.ConnectTimeout("no route"))

    with pytest.raises(TransportError, match="ConnectTimeout"):
        await make_client(max_retries=3).refresh(refreshable())

    assert route.call_count == 4


async def test_429_with_retry_after_seconds_is_honoured(
    make_client: Make, router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, json=token_body()),
        ]
    )

    await make_client().refresh(refreshable())

    assert sleeps == [3.0]


async def test_429_with_an_http_date_is_honoured(
    make_client: Make, router: respx.MockRouter, sleeps: list[float]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": when}),
            httpx.Response(200, json=token_body()),
        ]
    )

    await make_client().refresh(refreshable())

    assert len(sleeps) == 1
    assert 3 <= sleeps[0] <= 5


async def test_429_that_persists_raises_rate_limited_with_retry_after(
    make_client: Make, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post(TOKEN_URL).respond(
        429,
        headers={"Retry-After": "2"},
        json={"error": "rate_limit_exceeded", "error_description": "slow down"},
    )

    with pytest.raises(RateLimitedError) as caught:
        await make_client(max_retries=2).refresh(refreshable())

    assert caught.value.retry_after == 2.0
    assert caught.value.error_description == "slow down"
    assert route.call_count == 3
    assert sleeps == [2.0, 2.0]


async def test_a_retry_after_longer_than_a_request_should_wait_is_not_slept(
    make_client: Make, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.post(TOKEN_URL).respond(429, headers={"Retry-After": "3600"})

    with pytest.raises(RateLimitedError) as caught:
        await make_client().refresh(refreshable())

    assert caught.value.retry_after == 3600.0
    assert route.call_count == 1
    assert sleeps == []


async def test_backoff_grows_and_stays_capped(
    make_client: Make, router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.post(TOKEN_URL).respond(503)

    with pytest.raises(ServerUnavailableError):
        await make_client(max_retries=6).refresh(refreshable())

    assert len(sleeps) == 6
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(6)]
    assert all(c / 2 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


async def test_a_502_html_page_is_server_unavailable(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(502, html="<html><h1>502 Bad Gateway</h1></html>")

    with pytest.raises(ServerUnavailableError, match="502") as caught:
        await make_client(max_retries=0).refresh(refreshable())

    assert caught.value.response is not None
    assert caught.value.response.status_code == 502


async def test_redirects_are_not_followed_at_the_token_endpoint(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(307, headers={"Location": "https://elsewhere.example/token"})
    elsewhere = router.post("https://elsewhere.example/token").respond(200, json=token_body())
    async with httpx.AsyncClient(follow_redirects=True) as http:
        client = make_client(http_client=http)
        with pytest.raises(InvalidResponseError, match="redirect"):
            await client.exchange_code("the-code", client.authorization_request())

    assert elsewhere.call_count == 0


async def test_the_code_is_not_sent_for_a_flow_started_at_another_issuer(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body())
    other = make_client(provider=whop_metadata("https://other-idp.test"))
    flow = other.authorization_request()

    with pytest.raises(IssuerMismatchError):
        await make_client().exchange_code("the-code", flow)

    assert route.call_count == 0


async def test_an_empty_code_is_never_sent(make_client: Make, router: respx.MockRouter) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body())
    client = make_client()

    with pytest.raises(InvalidCallbackError):
        await client.exchange_code("", client.authorization_request())

    assert route.call_count == 0


async def test_complete_authorization_checks_the_callback_then_exchanges(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(TOKEN_URL).respond(200, json=token_body())
    client = make_client(scope=NO_OPENID)
    flow = client.authorization_request()

    token = await client.complete_authorization(f"code=abc&state={flow.state}", flow)

    assert token.access_token == "at_1"
    assert form(route.calls.last.request)["code"] == "abc"


async def test_an_oversized_token_response_is_refused_before_it_is_all_read(
    make_client: Make,
) -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(1000):
            produced += 1
            yield b" " * 10_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = make_client(http_client=http, max_response_bytes=50_000)

    with pytest.raises(InvalidResponseError, match="larger than 50000"):
        await client.refresh(refreshable())

    assert produced <= 6
    await http.aclose()


async def test_a_body_that_cannot_be_decompressed_is_an_invalid_response(
    make_client: Make,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # stream=, so the mock itself does not try to decompress the body
        stream = httpx.ByteStream(b"definitely not gzip")
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=stream)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(InvalidResponseError, match="decoded"):
            await make_client(http_client=http).refresh(refreshable())


async def test_a_declared_oversized_body_is_refused_from_its_length(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(TOKEN_URL).respond(200, content=b"{" + b" " * 60_000 + b"}")

    with pytest.raises(InvalidResponseError, match="larger than"):
        await make_client(max_response_bytes=50_000).refresh(refreshable())


async def test_the_whop_preset_is_the_default_provider() -> None:
    async with OAuthClient(client_id="app_1", redirect_uri=REDIRECT_URI) as client:
        assert client.metadata.token_endpoint == "https://api.whop.com/oauth/token"
        assert client.issuer == "https://api.whop.com"
        assert client.metadata.revocation_body == "json"
