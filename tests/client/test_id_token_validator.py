"""IdTokenValidator on its own: which key it picks, how it fetches and caches the JWKS,
the leeway, and what each refusal says. The provider is a stub sender that counts."""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from whop_oauth import IdTokenError, InvalidResponseError, ProviderMetadata, ServerUnavailableError
from whop_oauth import _discovery as discovery_module
from whop_oauth._id_token import (
    ALLOWED_ALGORITHMS,
    IdTokenValidator,
    refuse_missing_id_token,
    unverified_subject,
)

ISSUER = "https://idp.test"
CLIENT = "app_1"
EC = ECKey.generate_key("P-256", parameters={"kid": "ec1", "use": "sig"})
EC_2 = ECKey.generate_key("P-256", parameters={"kid": "ec2"})
ED = OKPKey.generate_key("Ed25519", parameters={"kid": "ed1"})


def public(*keys: Any, **extra: Any) -> dict[str, Any]:
    return {"keys": [{**key.as_dict(private=False), **extra} for key in keys]}


class Provider:
    """A stub HttpSender: answers each JWKS request with the next document, and counts."""

    def __init__(self, *documents: Any, status: int = 200) -> None:
        self.documents = list(documents)
        self.status = status
        self.calls = 0

    async def send(self, method: str, url: str, *, what: str, **_: Any) -> httpx.Response:
        assert (method, url, what) == ("GET", f"{ISSUER}/jwks", "jwks")
        self.calls += 1
        document = self.documents[min(self.calls, len(self.documents)) - 1]
        return httpx.Response(self.status, json=document, request=httpx.Request(method, url))


def validator(provider: Provider, **options: Any) -> IdTokenValidator:
    return IdTokenValidator(
        provider,  # type: ignore[arg-type]
        jwks_uri=options.pop("jwks_uri", f"{ISSUER}/jwks"),
        issuer=ISSUER,
        client_id=CLIENT,
        **options,
    )


def sign(key: Any = EC, header: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "user_1", "aud": CLIENT, "exp": now + 300, "iat": now}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    head = header if header is not None else {"alg": "ES256", "kid": "ec1"}
    with warnings.catch_warnings():  # joserfc warns that the *name* EdDSA is deprecated
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(head, payload, key, algorithms=[head["alg"]])


def with_header(id_token: str, header: dict[str, Any]) -> str:
    """The token with its header replaced (the signature no longer matches it)."""
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *id_token.split(".")[1:]])


async def refusal(check: IdTokenValidator, id_token: str, **options: Any) -> str:
    with pytest.raises(IdTokenError) as caught:
        await check.validate(id_token, **{"nonce": None, **options})
    assert type(caught.value) is IdTokenError
    return str(caught.value)


# -- what each refusal says ----------------------------------------------------------------


async def test_each_refusal_before_the_key_says_why() -> None:
    check = validator(Provider(public(EC)))

    assert await refusal(check, "not-a-jwt") == "the id_token is not a signed JWT"
    assert await refusal(check, with_header(sign(), {"alg": "HS256", "kid": "ec1"})) == (
        "the id_token algorithm is not an allowed asymmetric one"
    )
    assert await refusal(check, sign(EC_2, {"alg": "ES256", "kid": "ec1"})) == (
        "the id_token signature does not verify"
    )


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": [CLIENT, "other"]}, "id_token has several audiences but no azp"),
        ({"azp": "other"}, "id_token azp is not this client"),
        ({"aud": [CLIENT, "other"], "azp": "other"}, "id_token azp is not this client"),
    ],
)
async def test_an_audience_or_azp_refusal_says_which(claims: dict[str, Any], message: str) -> None:
    assert await refusal(validator(Provider(public(EC))), sign(**claims)) == message


@pytest.mark.parametrize(
    "claims",
    [{"aud": [CLIENT]}, {"aud": [CLIENT], "azp": CLIENT}, {"aud": [CLIENT, "x"], "azp": CLIENT}],
)
async def test_one_audience_needs_no_azp_and_several_need_ours(claims: dict[str, Any]) -> None:
    verified = await validator(Provider(public(EC))).validate(sign(**claims), nonce=None)

    assert verified["aud"] == claims["aud"]


@pytest.mark.parametrize(
    ("claims", "options", "claim"),
    [
        ({"iss": "https://other.test"}, {}, "iss"),
        ({"iss": None}, {}, "iss"),
        ({"aud": "other"}, {}, "aud"),
        ({"sub": None}, {}, "sub"),
        ({"exp": None}, {}, "exp"),
        ({"iat": None}, {}, "iat"),
        ({"nonce": "n2"}, {"nonce": "n1"}, "nonce"),
        ({"nonce": None}, {"nonce": "n1"}, "nonce"),
        ({"sub": "user_2"}, {"subject": "user_1"}, "sub"),
    ],
)
async def test_a_claim_refusal_names_the_claim_never_its_value(
    claims: dict[str, Any], options: dict[str, Any], claim: str
) -> None:
    message = await refusal(validator(Provider(public(EC))), sign(**claims), **options)

    assert message.startswith("id_token claim check failed: ")
    assert claim in message
    for value in claims.values():
        assert value is None or str(value) not in message.removeprefix(
            "id_token claim check failed: "
        ).replace(claim, "")


async def test_the_nonce_and_subject_are_checked_only_when_given() -> None:
    check = validator(Provider(public(EC)))
    id_token = sign(nonce="n1", sub="user_1")

    assert (await check.validate(id_token, nonce=None))["nonce"] == "n1"
    assert (await check.validate(id_token, nonce="n1", subject="user_1"))["sub"] == "user_1"


# -- the leeway ------------------------------------------------------------------------------


# joserfc refuses exp <= now - leeway: an exp exactly 60 s ago is out, whatever the clock does next.
@pytest.mark.parametrize(("skew", "accepted"), [(-58, True), (-60, False), (50, True), (70, False)])
async def test_the_default_leeway_is_60_seconds_for_exp_and_iat(skew: int, accepted: bool) -> None:
    now = int(time.time())
    # A negative skew: expired that long ago. A positive one: issued that far in the future.
    claims = {"exp": now + skew} if skew < 0 else {"iat": now + skew}
    check = validator(Provider(public(EC)))

    if accepted:
        assert (await check.validate(sign(**claims), nonce=None))["sub"] == "user_1"
    else:
        assert (await refusal(check, sign(**claims))).startswith("id_token claim check failed")


async def test_a_custom_leeway_is_used() -> None:
    expired = sign(exp=int(time.time()) - 30)

    assert await refusal(validator(Provider(public(EC)), leeway=10.0), expired)
    assert await validator(Provider(public(EC)), leeway=45.9).validate(expired, nonce=None)


# -- choosing the key -------------------------------------------------------------------------


async def test_the_key_named_by_kid_is_used_among_several() -> None:
    check = validator(Provider(public(EC, EC_2)))

    assert (await check.validate(sign(EC_2, {"alg": "ES256", "kid": "ec2"}), nonce=None))["sub"]
    assert (await check.validate(sign(EC, {"alg": "ES256", "kid": "ec1"}), nonce=None))["sub"]


async def test_without_kid_only_a_single_key_of_the_right_type_is_used() -> None:
    no_kid = sign(header={"alg": "ES256"})

    assert await validator(Provider(public(EC, ED))).validate(no_kid, nonce=None)
    message = await refusal(validator(Provider(public(EC, EC_2))), no_kid)
    assert message == "no key in the provider's JWKS matches the id_token"


async def test_a_key_pinned_to_another_algorithm_is_not_used() -> None:
    provider = Provider(public(EC, alg="ES384"))

    message = await refusal(validator(provider), sign())

    assert message == "no key in the provider's JWKS matches the id_token"
    assert provider.calls == 2  # the kid was unknown: fetched once more, then refused
    assert await validator(Provider(public(EC, alg="ES256"))).validate(sign(), nonce=None)


@pytest.mark.parametrize("alg", ["RS256", "PS384", "EdDSA", "Ed25519"])
async def test_a_key_of_the_wrong_type_for_the_algorithm_is_not_used(alg: str) -> None:
    message = await refusal(
        validator(Provider(public(EC))), with_header(sign(), {"alg": alg, "kid": "ec1"})
    )

    assert message == "no key in the provider's JWKS matches the id_token"


async def test_an_rsa_key_verifies_rs256_and_ps256() -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "r1"})
    check = validator(Provider(public(rsa)))

    for alg in ("RS256", "PS256"):
        assert await check.validate(sign(rsa, {"alg": alg, "kid": "r1"}), nonce=None)


async def test_ed25519_only_takes_an_ed25519_key_and_eddsa_also_ed448() -> None:
    ed448 = OKPKey.generate_key("Ed448", parameters={"kid": "ed448"})
    check = validator(Provider(public(ED, ed448)))

    assert await check.validate(sign(ed448, {"alg": "EdDSA", "kid": "ed448"}), nonce=None)
    assert await check.validate(sign(ED, {"alg": "Ed25519", "kid": "ed1"}), nonce=None)
    ed448_as_ed25519 = with_header(
        sign(ed448, {"alg": "EdDSA", "kid": "ed448"}), {"alg": "Ed25519", "kid": "ed448"}
    )
    assert await refusal(check, ed448_as_ed25519) == (
        "no key in the provider's JWKS matches the id_token"
    )


def test_only_asymmetric_algorithms_are_allowed() -> None:
    assert sorted(ALLOWED_ALGORITHMS) == sorted(
        ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
         "EdDSA", "Ed25519"]
    )  # fmt: skip


# -- fetching and caching the JWKS -----------------------------------------------------------


async def test_an_unknown_kid_fetches_the_jwks_once_more_and_a_missing_kid_does_not() -> None:
    rotated = Provider(public(EC), public(EC, EC_2))
    check = validator(rotated)
    await check.warm()

    assert await check.validate(sign(EC_2, {"alg": "ES256", "kid": "ec2"}), nonce=None)
    assert rotated.calls == 2

    several = Provider(public(EC, EC_2))
    message = await refusal(validator(several), sign(header={"alg": "ES256"}))
    assert message == "no key in the provider's JWKS matches the id_token"
    assert several.calls == 1


async def test_warm_fetches_once_while_the_keys_are_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(discovery_module.time, "monotonic", lambda: clock[0])
    provider = Provider(public(EC))
    check = validator(provider)

    await check.warm()
    await check.warm()
    clock[0] += 3599
    await check.validate(sign(), nonce=None)
    assert provider.calls == 1
    clock[0] += 1  # the default TTL is an hour: stale at 3600 s
    await check.warm()
    assert provider.calls == 2


def sign_with_any_header(header: dict[str, Any]) -> str:
    """ES256 over a header joserfc would refuse to write (e.g. a numeric kid)."""
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "user_1", "aud": CLIENT, "exp": now + 300, "iat": now}
    parts = [
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in (header, payload)
    ]
    der = EC.private_key.sign(".".join(parts).encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return ".".join([*parts, base64.urlsafe_b64encode(signature).rstrip(b"=").decode()])


async def test_a_kid_that_is_not_a_string_counts_as_none_and_fetches_nothing_more() -> None:
    provider = Provider(public(EC))
    check = validator(provider)
    assert await check.validate(sign_with_any_header({"alg": "ES256"}), nonce=None)

    # Picked as the single key (no refetch for an "unknown kid"), then joserfc refuses it.
    message = await refusal(check, sign_with_any_header({"alg": "ES256", "kid": 5}))

    assert message == "the id_token signature does not verify"
    assert provider.calls == 1


async def test_without_fetching_only_keys_already_fetched_are_used() -> None:
    provider = Provider(public(EC))
    check = validator(provider)

    message = await refusal(check, sign(), fetch_keys=False)
    assert message == "no key already fetched matches the id_token"
    assert provider.calls == 0
    await check.warm()
    assert await check.validate(sign(), nonce=None, fetch_keys=False)
    message = await refusal(check, sign(EC_2, {"alg": "ES256", "kid": "ec2"}), fetch_keys=False)
    assert message == "no key already fetched matches the id_token"
    assert provider.calls == 1


async def test_a_provider_without_jwks_uri_cannot_check_id_tokens() -> None:
    provider = Provider(public(EC))

    message = await refusal(validator(provider, jwks_uri=None), sign())

    assert message == "the provider has no jwks_uri to check id_tokens with"
    assert provider.calls == 0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"keys": {"k": 1}}, "jwks: no keys list"),
        ({}, "jwks: no keys list"),
        ("not an object", "jwks: the response is JSON but not an object"),
        ({"keys": [{"kty": "EC", "crv": "P-256"}]}, "jwks: no usable signing key"),
    ],
)
async def test_an_unusable_jwks_is_an_invalid_response(document: Any, message: str) -> None:
    with pytest.raises(InvalidResponseError) as caught:
        await validator(Provider(document)).validate(sign(), nonce=None)

    assert str(caught.value) == message
    assert caught.value.response is not None


async def test_encryption_keys_and_non_objects_in_the_jwks_are_skipped() -> None:
    document = public(EC, use="enc")
    document["keys"] += ["junk", 5, {**EC_2.as_dict(private=False), "kid": "ec1"}]
    check = validator(Provider(document))

    # Only EC_2 (use defaults to sig) is kept, under kid ec1.
    assert await check.validate(sign(EC_2, {"alg": "ES256", "kid": "ec1"}), nonce=None)
    assert await refusal(check, sign(EC, {"alg": "ES256", "kid": "ec1"})) == (
        "the id_token signature does not verify"
    )


async def test_a_jwks_that_is_not_json_says_so() -> None:
    class TextProvider(Provider):
        async def send(self, method: str, url: str, *, what: str, **_: Any) -> httpx.Response:
            self.calls += 1
            return httpx.Response(200, text="<html>", request=httpx.Request(method, url))

    with pytest.raises(InvalidResponseError) as caught:
        await validator(TextProvider()).validate(sign(), nonce=None)

    assert str(caught.value) == "jwks: the response is not JSON (HTTP 200)"


async def test_a_jwks_error_status_is_the_typed_error_it_stands_for() -> None:
    with pytest.raises(ServerUnavailableError) as caught:
        await validator(Provider({}, status=503)).validate(sign(), nonce=None)

    assert str(caught.value) == "jwks: HTTP 503 without an OAuth error"


# -- helpers ------------------------------------------------------------------------------------


def test_unverified_subject_reads_sub_or_gives_none() -> None:
    assert unverified_subject(sign(sub="user_9")) == "user_9"
    assert unverified_subject(sign(sub=None)) is None
    assert unverified_subject(sign(sub=5)) is None
    assert unverified_subject("not-a-jwt") is None
    header = sign().split(".")[0]
    assert unverified_subject(f"{header}.WzFd.sig") is None  # payload [1]: not an object


@pytest.mark.parametrize(
    ("scope", "issues", "refused"),
    [(("openid",), True, True), (("openid",), False, False), (("profile",), True, False)],
)
def test_a_missing_id_token_is_refused_only_for_openid_at_an_openid_provider(
    scope: tuple[str, ...], issues: bool, refused: bool
) -> None:
    metadata = ProviderMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/a",
        token_endpoint=f"{ISSUER}/t",
        issues_id_tokens=issues,
    )
    if refused:
        with pytest.raises(IdTokenError) as caught:
            refuse_missing_id_token(scope, metadata)
        assert str(caught.value) == (
            "the token response has no id_token although openid was requested, so the nonce "
            "cannot be checked (for a provider without OpenID Connect, set "
            "ProviderMetadata(issues_id_tokens=False) or leave openid out of the scope)"
        )
    else:
        assert refuse_missing_id_token(scope, metadata) is None
