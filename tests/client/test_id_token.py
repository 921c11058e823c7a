"""id_token validation at code exchange and refresh, with a real ES256 key."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import respx
from client_support import (
    CLIENT_ID,
    ISSUER,
    JWKS_URL,
    METADATA,
    TOKEN_URL,
    token_body,
    unsigned_token,
)
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from whop_oauth import (
    WHOP,
    AuthorizationRequest,
    IdTokenError,
    InvalidResponseError,
    OAuthClient,
    ProviderMetadata,
    Token,
)

Make = Callable[..., OAuthClient]
MakeIdToken = Callable[..., str]


@pytest.fixture
def client(make_client: Make) -> OAuthClient:
    return make_client()


@pytest.fixture
def flow(client: OAuthClient) -> AuthorizationRequest:
    return client.authorization_request()


@pytest.fixture
def jwks_route(router: respx.MockRouter, jwks: dict[str, Any]) -> respx.Route:
    return router.get(JWKS_URL).respond(200, json=jwks)


async def exchange_with(
    router: respx.MockRouter, client: OAuthClient, flow: AuthorizationRequest, id_token: str
) -> Token:
    router.post(TOKEN_URL).respond(200, json=token_body(id_token=id_token))
    return await client.exchange_code("code", flow)


async def test_a_valid_id_token_gives_its_claims(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
) -> None:
    id_token = make_id_token(nonce=flow.nonce, email="a@b.example")

    token = await exchange_with(router, client, flow, id_token)

    assert token.id_token == id_token
    assert token.subject == "user_1"
    assert token.id_token_claims["email"] == "a@b.example"
    assert jwks_route.call_count == 1


async def test_the_jwks_is_cached_between_sign_ins(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    make_id_token: MakeIdToken,
) -> None:
    for _ in range(3):
        flow = client.authorization_request()
        await exchange_with(router, client, flow, make_id_token(nonce=flow.nonce))

    assert jwks_route.call_count == 1


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "someone_else"}, "wrong audience"),
        ({"aud": ["someone_else", "another"]}, "audience list without us"),
        ({"aud": None}, "no audience"),
        ({"iss": "https://attacker.example"}, "wrong issuer"),
        ({"iss": ISSUER + "/"}, "issuer with a trailing slash"),
        ({"nonce": "another-flows-nonce"}, "wrong nonce"),
        ({"nonce": None}, "no nonce"),
        ({"exp": int(time.time()) - 3600}, "expired an hour ago"),
        ({"exp": None}, "no expiry"),
        ({"iat": int(time.time()) + 3600}, "issued in the future"),
        ({"iat": None}, "no iat"),
        ({"sub": None}, "no subject"),
        ({"aud": [CLIENT_ID, "other"]}, "several audiences without azp"),
        ({"azp": "other"}, "authorised party is someone else"),
    ],
)
async def test_an_id_token_with_bad_claims_is_refused(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
    claims: dict[str, Any],
    why: str,
) -> None:
    id_token = make_id_token(**{"nonce": flow.nonce, **claims})

    with pytest.raises(IdTokenError):
        await exchange_with(router, client, flow, id_token)


async def test_several_audiences_are_fine_when_azp_is_us(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
) -> None:
    id_token = make_id_token(nonce=flow.nonce, aud=[CLIENT_ID, "other"], azp=CLIENT_ID)

    token = await exchange_with(router, client, flow, id_token)

    assert token.id_token_claims["azp"] == CLIENT_ID


async def test_clock_skew_within_the_leeway_is_tolerated(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    make_client: Make,
    make_id_token: MakeIdToken,
) -> None:
    client = make_client(id_token_leeway=120)
    flow = client.authorization_request()
    now = int(time.time())
    id_token = make_id_token(nonce=flow.nonce, exp=now - 60, iat=now + 60)

    token = await exchange_with(router, client, flow, id_token)

    assert token.subject == "user_1"


async def test_alg_none_is_refused_without_looking_for_a_key(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u", "aud": CLIENT_ID, "exp": now + 60, "iat": now}
    id_token = unsigned_token({**claims, "nonce": flow.nonce})

    with pytest.raises(IdTokenError, match="algorithm"):
        await exchange_with(router, client, flow, id_token)

    assert jwks_route.call_count == 0


async def test_hmac_signed_with_the_public_key_is_refused(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
    signing_key: ECKey,
) -> None:
    # joserfc refuses to build this key, so the attacker's token is made by hand.
    public_pem = signing_key.as_pem(private=False)
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u", "aud": CLIENT_ID, "exp": now + 60, "iat": now}
    id_token = hmac_token({**claims, "nonce": flow.nonce}, public_pem)

    with pytest.raises(IdTokenError, match="algorithm"):
        await exchange_with(router, client, flow, id_token)


def hmac_token(claims: dict[str, Any], secret: bytes) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'kid': 'k1'})}.{part(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


async def test_a_signature_by_another_key_with_the_same_kid_is_refused(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
) -> None:
    impostor = ECKey.generate_key("P-256", parameters={"kid": "k1"})

    with pytest.raises(IdTokenError, match="signature"):
        await exchange_with(router, client, flow, make_id_token(nonce=flow.nonce, key=impostor))


async def test_an_rs256_token_checked_against_an_ec_key_set_is_refused(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    id_token = make_id_token(nonce=flow.nonce, key=rsa, header={"alg": "RS256", "kid": "k1"})

    with pytest.raises(IdTokenError, match="no key"):
        await exchange_with(router, client, flow, id_token)


async def test_an_unknown_kid_refetches_the_jwks_once_and_then_verifies(
    router: respx.MockRouter,
    client: OAuthClient,
    make_id_token: MakeIdToken,
    jwks: dict[str, Any],
) -> None:
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2", "alg": "ES256"})
    after_rotation = {"keys": [*jwks["keys"], rotated.as_dict(private=False)]}
    route = router.get(JWKS_URL).mock(
        side_effect=[
            respx.MockResponse(200, json=jwks),
            respx.MockResponse(200, json=after_rotation),
        ]
    )
    first = client.authorization_request()
    await exchange_with(router, client, first, make_id_token(nonce=first.nonce))
    second = client.authorization_request()
    id_token = make_id_token(nonce=second.nonce, key=rotated, header={"alg": "ES256", "kid": "k2"})

    token = await exchange_with(router, client, second, id_token)

    assert token.subject == "user_1"
    assert route.call_count == 2


async def test_a_kid_still_unknown_after_one_refetch_is_refused(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k-unknown"})
    header = {"alg": "ES256", "kid": "k-unknown"}

    with pytest.raises(IdTokenError, match="no key"):
        await exchange_with(
            router, client, flow, make_id_token(nonce=flow.nonce, key=stranger, header=header)
        )

    assert jwks_route.call_count == 2


@pytest.mark.parametrize("id_token", ["not-a-jwt", "a.b", "a.b.c.d.e", "ä.b.c"])
async def test_an_id_token_that_is_not_a_jws_is_refused(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    id_token: str,
) -> None:
    with pytest.raises(IdTokenError):
        await exchange_with(router, client, flow, id_token)


async def test_a_broken_jwks_document_is_an_invalid_response(
    router: respx.MockRouter,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
) -> None:
    router.get(JWKS_URL).respond(200, json={"keys": "nope"})

    with pytest.raises(InvalidResponseError, match="jwks"):
        await exchange_with(router, client, flow, make_id_token(nonce=flow.nonce))


async def test_a_token_without_kid_verifies_against_the_only_key_of_its_type(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
) -> None:
    id_token = make_id_token(nonce=flow.nonce, header={"alg": "ES256"})

    assert (await exchange_with(router, client, flow, id_token)).subject == "user_1"


async def test_a_token_without_kid_is_refused_when_several_keys_could_match(
    router: respx.MockRouter,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
    jwks: dict[str, Any],
) -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "k9"}).as_dict(private=False)
    router.get(JWKS_URL).respond(200, json={"keys": [*jwks["keys"], other]})
    id_token = make_id_token(nonce=flow.nonce, header={"alg": "ES256"})

    with pytest.raises(IdTokenError, match="no key"):
        await exchange_with(router, client, flow, id_token)


async def test_a_jwks_with_only_encryption_keys_is_an_invalid_response(
    router: respx.MockRouter,
    client: OAuthClient,
    flow: AuthorizationRequest,
    make_id_token: MakeIdToken,
    jwks: dict[str, Any],
) -> None:
    router.get(JWKS_URL).respond(200, json={"keys": [{**jwks["keys"][0], "use": "enc"}]})

    with pytest.raises(InvalidResponseError, match="no usable signing key"):
        await exchange_with(router, client, flow, make_id_token(nonce=flow.nonce))


async def test_a_refreshed_id_token_must_keep_the_subject(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    make_id_token: MakeIdToken,
) -> None:
    old = Token(access_token="at_old", refresh_token="rt_old", id_token_claims={"sub": "user_1"})
    router.post(TOKEN_URL).respond(
        200, json=token_body(id_token=make_id_token(sub="user_2", nonce=None))
    )

    with pytest.raises(IdTokenError, match="another user") as caught:
        await client.refresh(old)
    # The refresh token is spent: the answer rides on the error, to be revoked, not stored.
    assert caught.value.rotated is not None
    assert caught.value.rotated.refresh_token != old.refresh_token


async def test_a_refreshed_id_token_for_the_same_subject_replaces_the_claims(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    make_id_token: MakeIdToken,
) -> None:
    old = Token(
        access_token="at_old",
        refresh_token="rt_old",
        id_token="x.y.z",  # a sign-in's id_token: its keys are fetched before the refresh
        id_token_claims={"sub": "user_1", "v": 1},
    )
    router.post(TOKEN_URL).respond(200, json=token_body(id_token=make_id_token(nonce=None, v=2)))

    token = await client.refresh(old)

    assert token.id_token_claims["v"] == 2


async def test_an_id_token_is_refused_when_the_provider_has_no_jwks(
    router: respx.MockRouter, make_client: Make, make_id_token: MakeIdToken
) -> None:

    client = make_client(provider=dataclasses.replace(METADATA, jwks_uri=None))
    flow = client.authorization_request()

    with pytest.raises(IdTokenError, match="jwks_uri"):
        await exchange_with(router, client, flow, make_id_token(nonce=flow.nonce))


def test_id_token_helpers_make_real_signatures(
    signing_key: ECKey, make_id_token: MakeIdToken
) -> None:
    # Guards the fixtures themselves: the signed token verifies with the public key.
    public = ECKey.import_key(signing_key.as_dict(private=False))
    decoded = jwt.decode(make_id_token(), public, algorithms=["ES256"])

    assert decoded.claims["aud"] == CLIENT_ID


def sign_quietly(header: dict[str, Any], claims: dict[str, Any], key: OKPKey) -> str:
    with warnings.catch_warnings():  # joserfc warns that the *name* EdDSA is deprecated
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(header, claims, key, algorithms=[header["alg"]])


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
async def test_an_id_token_signed_with_an_ed25519_key_verifies(
    router: respx.MockRouter,
    client: OAuthClient,
    flow: AuthorizationRequest,
    signing_key: ECKey,
    alg: str,
) -> None:
    ed = OKPKey.generate_key("Ed25519", parameters={"kid": "ed1", "use": "sig"})
    x25519 = OKPKey.generate_key("X25519", parameters={"kid": "x1"})  # ECDH: never picked
    keys = [signing_key.as_dict(private=False), ed.as_dict(private=False)]
    router.get(JWKS_URL).respond(200, json={"keys": [*keys, x25519.as_dict(private=False)]})
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "user_ed", "aud": CLIENT_ID, "exp": now + 300, "iat": now}

    id_token = sign_quietly({"alg": alg, "kid": "ed1"}, {**claims, "nonce": flow.nonce}, ed)
    token = await exchange_with(router, client, flow, id_token)

    assert token.subject == "user_ed"
    forged = sign_quietly({"alg": alg, "kid": "ed1"}, {**claims, "nonce": flow.nonce},
                          OKPKey.generate_key("Ed25519"))  # fmt: skip
    with pytest.raises(IdTokenError, match="does not verify"):
        await exchange_with(router, client, client.authorization_request(), forged)


async def test_an_ed25519_token_finds_no_key_in_an_ec_only_key_set(
    router: respx.MockRouter,
    jwks_route: respx.Route,
    client: OAuthClient,
    flow: AuthorizationRequest,
) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u", "aud": CLIENT_ID, "exp": now + 300, "iat": now}
    id_token = sign_quietly({"alg": "EdDSA"}, {**claims, "nonce": flow.nonce},
                            OKPKey.generate_key("Ed25519"))  # fmt: skip

    with pytest.raises(IdTokenError, match="no key"):
        await exchange_with(router, client, flow, id_token)


async def test_an_openid_sign_in_answered_without_an_id_token_is_refused(
    router: respx.MockRouter, jwks_route: respx.Route, client: OAuthClient
) -> None:
    token_route = router.post(TOKEN_URL).respond(200, json=token_body())  # no id_token
    flow = client.authorization_request()
    assert "openid" in flow.scope

    with pytest.raises(IdTokenError, match="no id_token") as caught:
        await client.exchange_code("code", flow)

    assert token_route.call_count == 1
    assert jwks_route.call_count == 0
    assert "at_1" not in str(caught.value)


async def test_no_id_token_is_required_without_openid_or_from_an_oauth_only_provider(
    router: respx.MockRouter, make_client: Make
) -> None:
    router.post(TOKEN_URL).respond(200, json=token_body())
    oauth_only = dataclasses.replace(METADATA, issues_id_tokens=False)

    for client in (make_client(scope="profile email"), make_client(provider=oauth_only)):
        token = await client.exchange_code("code", client.authorization_request())
        assert token.access_token == "at_1"
        assert token.id_token_claims == {}


async def test_a_refresh_may_come_back_without_an_id_token(
    router: respx.MockRouter, jwks_route: respx.Route, client: OAuthClient
) -> None:
    router.post(TOKEN_URL).respond(200, json=token_body(refresh_token="rt_2"))
    signed_in = Token("at_0", refresh_token="rt_1", scopes=("openid",), id_token="x.y.z")

    refreshed = await client.refresh(signed_in)  # OpenID Connect Core §12.2: optional

    assert refreshed.access_token == "at_1"


def test_discovery_marks_only_openid_providers_as_issuing_id_tokens() -> None:
    base = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
    }
    oidc = {**base, "id_token_signing_alg_values_supported": ["ES256"]}
    openid_scope = {**base, "scopes_supported": ["openid", "profile"]}

    assert ProviderMetadata.from_document(oidc).issues_id_tokens
    assert ProviderMetadata.from_document(openid_scope).issues_id_tokens
    assert not ProviderMetadata.from_document(base).issues_id_tokens  # RFC 8414, OAuth only
    assert WHOP.issues_id_tokens
