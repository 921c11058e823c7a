"""Revocation (RFC 7009, Whop's JSON body), introspection (RFC 7662) and userinfo."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import httpx
import pytest
import respx
from client_support import AUTH_METHODS, CLIENT_ID, METADATA, SECRET, assert_client_auth, form

from whop_oauth import (
    WHOP,
    ConfigurationError,
    InvalidResponseError,
    OAuthClient,
    ProviderError,
    ServerUnavailableError,
    Token,
)

Make = Callable[..., OAuthClient]
REVOKE = f"{METADATA.issuer}/oauth/revoke"
INTROSPECT = f"{METADATA.issuer}/oauth/introspect"
USERINFO = f"{METADATA.issuer}/oauth/userinfo"

TOKEN = Token(access_token="at_1", refresh_token="rt_1", id_token_claims={"sub": "user_1"})


@pytest.mark.parametrize(("method", "secret"), AUTH_METHODS)
async def test_revoking_a_token_revokes_its_refresh_token_with_client_auth(
    make_client: Make, router: respx.MockRouter, method: str, secret: str | None
) -> None:
    route = router.post(REVOKE).respond(200)
    client = make_client(client_secret=secret, token_endpoint_auth_method=method)

    await client.revoke(TOKEN)

    request = route.calls.last.request
    body = form(request)
    assert body["token"] == "rt_1"
    assert body["token_type_hint"] == "refresh_token"
    assert_client_auth(request, method, secret)


async def test_a_token_without_refresh_token_revokes_the_access_token(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(REVOKE).respond(200)

    await make_client().revoke(Token(access_token="at_only"))

    body = form(route.calls.last.request)
    assert (body["token"], body["token_type_hint"]) == ("at_only", "access_token")


async def test_a_raw_string_is_revoked_with_the_given_hint(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(REVOKE).respond(200)

    await make_client().revoke("at_x", token_type_hint="access_token")

    assert form(route.calls.last.request)["token_type_hint"] == "access_token"


async def test_whop_revocation_sends_its_json_body_for_a_public_client(
    make_client: Make, router: respx.MockRouter
) -> None:
    assert WHOP.revocation_endpoint
    route = router.post(WHOP.revocation_endpoint).respond(200, json={})

    await make_client(provider=WHOP).revoke(TOKEN)

    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"token": "rt_1", "client_id": CLIENT_ID}
    assert "Authorization" not in request.headers


async def test_whop_revocation_by_a_confidential_client_posts_its_secret_in_the_json_body(
    make_client: Make, router: respx.MockRouter
) -> None:
    assert WHOP.revocation_endpoint
    route = router.post(WHOP.revocation_endpoint).respond(200, json={})

    await make_client(provider=WHOP, client_secret=SECRET).revoke(TOKEN)

    body = json.loads(route.calls.last.request.content)
    assert body == {"token": "rt_1", "client_id": CLIENT_ID, "client_secret": SECRET}


async def test_whop_revocation_with_basic_auth_keeps_the_secret_out_of_the_body(
    make_client: Make, router: respx.MockRouter
) -> None:
    assert WHOP.revocation_endpoint
    route = router.post(WHOP.revocation_endpoint).respond(200, json={})
    client = make_client(
        provider=WHOP, client_secret=SECRET, token_endpoint_auth_method="client_secret_basic"
    )

    await client.revoke(TOKEN)

    request = route.calls.last.request
    assert json.loads(request.content) == {"token": "rt_1", "client_id": CLIENT_ID}
    assert request.headers["Authorization"].startswith("Basic ")
    assert SECRET not in request.content.decode()


async def test_revoking_an_unknown_token_succeeds_with_200(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(REVOKE).respond(200, content=b"")

    await make_client().revoke("never-issued")

    assert route.call_count == 1


async def test_revocation_is_retried_on_503(make_client: Make, router: respx.MockRouter) -> None:
    route = router.post(REVOKE).mock(side_effect=[httpx.Response(503), httpx.Response(200)])

    await make_client().revoke(TOKEN)

    assert route.call_count == 2


async def test_revocation_is_retried_after_a_read_timeout(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(REVOKE).mock(side_effect=[httpx.ReadTimeout("t"), httpx.Response(200)])

    await make_client().revoke(TOKEN)

    assert route.call_count == 2


async def test_a_revocation_error_is_a_provider_error(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(REVOKE).respond(400, json={"error": "unsupported_token_type"})

    with pytest.raises(ProviderError) as caught:
        await make_client().revoke(TOKEN)

    assert caught.value.error == "unsupported_token_type"
    assert "rt_1" not in str(caught.value)


async def test_revocation_without_an_endpoint_is_a_configuration_error(
    make_client: Make,
) -> None:
    client = make_client(provider=dataclasses.replace(METADATA, revocation_endpoint=None))

    with pytest.raises(ConfigurationError):
        await client.revoke(TOKEN)


@pytest.mark.parametrize(("method", "secret"), AUTH_METHODS)
async def test_introspection_posts_the_token_with_client_auth(
    make_client: Make, router: respx.MockRouter, method: str, secret: str | None
) -> None:
    route = router.post(INTROSPECT).respond(
        200, json={"active": True, "scope": "openid", "sub": "user_1"}
    )
    client = make_client(client_secret=secret, token_endpoint_auth_method=method)

    info = await client.introspect("at_1", token_type_hint="access_token")

    assert info == {"active": True, "scope": "openid", "sub": "user_1"}
    request = route.calls.last.request
    body = form(request)
    assert (body["token"], body["token_type_hint"]) == ("at_1", "access_token")
    assert_client_auth(request, method, secret)


async def test_an_inactive_token_introspects_as_inactive(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.post(INTROSPECT).respond(200, json={"active": False})

    assert await make_client().introspect("gone") == {"active": False}
    assert "token_type_hint" not in form(route.calls.last.request)


@pytest.mark.parametrize("body", [{}, {"active": "true"}, {"active": 1}])
async def test_introspection_without_a_boolean_active_is_invalid(
    make_client: Make, router: respx.MockRouter, body: dict[str, object]
) -> None:
    router.post(INTROSPECT).respond(200, json=body)

    with pytest.raises(InvalidResponseError, match="active"):
        await make_client().introspect("at_1")


async def test_introspection_with_bad_client_credentials_is_a_provider_error(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.post(INTROSPECT).respond(401)

    with pytest.raises(ProviderError) as caught:
        await make_client(client_secret=SECRET).introspect("at_1")

    assert caught.value.error == "invalid_client"


async def test_introspection_without_an_endpoint_is_a_configuration_error(
    make_client: Make,
) -> None:
    client = make_client(provider=dataclasses.replace(METADATA, introspection_endpoint=None))

    with pytest.raises(ConfigurationError):
        await client.introspect("at_1")


@pytest.mark.parametrize(
    ("token", "sent", "hint"),
    [
        (TOKEN, "rt_1", "refresh_token"),
        (Token(access_token="at_only"), "at_only", "access_token"),
    ],
)
async def test_introspecting_a_token_object_sends_its_refresh_or_access_token(
    make_client: Make, router: respx.MockRouter, token: Token, sent: str, hint: str
) -> None:
    route = router.post(INTROSPECT).respond(200, json={"active": True})

    assert await make_client().introspect(token, token_type_hint="ignored") == {"active": True}

    body = form(route.calls.last.request)
    assert (body["token"], body["token_type_hint"]) == (sent, hint)
    assert "Token(" not in route.calls.last.request.content.decode()


@pytest.mark.parametrize("token", [None, b"at_1", 42, {"token": "at_1"}])
async def test_introspecting_anything_but_a_token_or_a_string_is_a_configuration_error(
    make_client: Make, router: respx.MockRouter, token: object
) -> None:
    route = router.post(INTROSPECT).respond(200, json={"active": False})

    with pytest.raises(ConfigurationError, match="Token or a str"):
        await make_client().introspect(token)  # type: ignore[arg-type]

    assert route.call_count == 0


async def test_userinfo_sends_the_bearer_header_and_returns_the_claims(
    make_client: Make, router: respx.MockRouter
) -> None:
    claims = {"sub": "user_1", "email": "a@b.example", "email_verified": True}
    route = router.get(USERINFO).respond(200, json=claims)

    info = await make_client().userinfo(TOKEN)

    assert info == claims
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer at_1"
    assert "at_1" not in str(request.url)


async def test_userinfo_accepts_a_raw_access_token(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.get(USERINFO).respond(200, json={"sub": "someone"})

    assert await make_client().userinfo("at_raw") == {"sub": "someone"}
    assert route.calls.last.request.headers["Authorization"] == "Bearer at_raw"


async def test_userinfo_for_another_subject_than_the_id_token_is_refused(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(USERINFO).respond(200, json={"sub": "user_2"})

    with pytest.raises(InvalidResponseError, match="sub"):
        await make_client().userinfo(TOKEN)


async def test_a_rejected_access_token_at_userinfo_is_invalid_token(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(USERINFO).respond(401)

    with pytest.raises(ProviderError) as caught:
        await make_client().userinfo(TOKEN)

    assert caught.value.error == "invalid_token"
    assert caught.value.status_code == 401
    assert "at_1" not in str(caught.value)


async def test_the_www_authenticate_challenge_names_the_error(
    make_client: Make, router: respx.MockRouter
) -> None:
    challenge = 'Bearer realm="x", error="invalid_token", error_description="expired"'
    router.get(USERINFO).respond(401, headers={"WWW-Authenticate": challenge})

    with pytest.raises(ProviderError) as caught:
        await make_client().userinfo(TOKEN)

    assert (caught.value.error, caught.value.error_description) == ("invalid_token", "expired")


async def test_userinfo_is_retried_after_a_timeout(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.get(USERINFO).mock(
        side_effect=[httpx.ReadTimeout("t"), httpx.Response(200, json={"sub": "user_1"})]
    )

    assert (await make_client().userinfo(TOKEN))["sub"] == "user_1"
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (200, b"<html></html>", InvalidResponseError),
        (200, b"[1]", InvalidResponseError),
        (500, b"oops", ServerUnavailableError),
    ],
)
async def test_userinfo_failures_are_typed(
    make_client: Make,
    router: respx.MockRouter,
    status: int,
    content: bytes,
    error: type[Exception],
) -> None:
    router.get(USERINFO).respond(status, content=content)

    with pytest.raises(error):
        await make_client(max_retries=0).userinfo(TOKEN)


async def test_userinfo_without_an_endpoint_is_a_configuration_error(make_client: Make) -> None:
    client = make_client(provider=dataclasses.replace(METADATA, userinfo_endpoint=None))

    with pytest.raises(ConfigurationError):
        await client.userinfo(TOKEN)
