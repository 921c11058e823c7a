"""Property-based tests: whatever arrives from the network or a browser gets exactly the
answer the rules give — the code, the token or the claims it carries, or one exact error
type. Round-trips of stored values live in test_round_trips.py."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.datastructures import QueryParams

from whop_oauth import (
    AuthorizationDenied,
    AuthorizationRequest,
    IdTokenError,
    InvalidCallbackError,
    InvalidClientError,
    InvalidGrantError,
    InvalidResponseError,
    IssuerMismatchError,
    ProviderError,
    RateLimitedError,
    ServerUnavailableError,
    StateMismatchError,
    Token,
)
from whop_oauth._callback import parse_callback
from whop_oauth._id_token import IdTokenValidator
from whop_oauth._token_response import parse_token_response, raise_for_status

FAST = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FEW = settings(FAST, max_examples=50)
ISSUER = "https://idp.example"
FLOW = AuthorizationRequest(
    url=f"{ISSUER}/authorize?x=1",
    state="S" * 43,
    code_verifier="v" * 64,
    nonce="n" * 43,
    redirect_uri="https://app.example/cb",
    issuer=ISSUER,
    scope=("openid",),
    authorization_response_iss_required=True,
)
LAX_FLOW = AuthorizationRequest(
    **{**FLOW.to_dict(), "scope": ("openid",)} | {"authorization_response_iss_required": False}
)
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)

# -- callback parsing ------------------------------------------------------------------
#
# The rules, written out again from the module docstring (RFC 6749 §4.1.2, RFC 9207),
# as the oracle every parsed callback is compared with.

CALLBACK_PARAMETERS = (
    "code", "state", "iss", "error", "error_description", "error_uri",
    "access_token", "id_token", "token_type", "expires_in", "scope", "session_state",
)  # fmt: skip


def rules(pairs: list[tuple[str, str]], flow: AuthorizationRequest) -> Any:
    """The code the callback gives, or the exact error type it must raise."""
    if len(pairs) > 64 or sum(len(k) + len(v) for k, v in pairs) > 16_384:
        return InvalidCallbackError
    known = [(name, value) for name, value in pairs if name in CALLBACK_PARAMETERS]
    values = dict(known)
    if len(values) != len(known) or "access_token" in values or "id_token" in values:
        return InvalidCallbackError
    if values.get("state") != flow.state:
        return StateMismatchError
    if values.get("iss", None if flow.authorization_response_iss_required else flow.issuer) != (
        flow.issuer
    ):
        return IssuerMismatchError
    if "error" in values:
        return AuthorizationDenied
    return values.get("code") or InvalidCallbackError


def outcome(params: Any, flow: AuthorizationRequest) -> Any:
    try:
        return parse_callback(params, flow)
    except Exception as exc:  # the exact type is what is compared
        return type(exc)


NAMES = st.one_of(st.sampled_from([*CALLBACK_PARAMETERS, "x", "utm"]), TEXT.map(lambda t: t[:8]))
VALUES = st.one_of(
    st.sampled_from([FLOW.state, FLOW.state[:-1], FLOW.state + " ", ISSUER, ISSUER + "/", ""]),
    TEXT,
)
GOOD = [("code", "c0de"), ("state", FLOW.state), ("iss", ISSUER)]


@st.composite
def callbacks(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A good callback, sometimes missing a part, with extras; sometimes near a size limit."""
    kept = [pair for pair in GOOD if draw(st.integers(0, 7))]
    extra = draw(st.lists(st.tuples(NAMES, VALUES), max_size=3))
    pairs = draw(st.permutations(kept + extra))
    pairs += [(f"f{i}", "v") for i in range(draw(st.sampled_from([0] * 8 + [60, 61, 62])))]
    over = draw(st.sampled_from([None] * 8 + [0, 1]))
    if over is not None:
        used = sum(len(k) + len(v) for k, v in pairs)
        pairs.append(("pad", "x" * max(0, 16_384 - used - 3 + over)))
    return pairs


@FAST
@given(callbacks(), st.sampled_from([FLOW, LAX_FLOW]))
def test_every_callback_shape_gets_exactly_what_the_rules_give(
    pairs: list[tuple[str, str]], flow: AuthorizationRequest
) -> None:
    expected = rules(pairs, flow)

    assert outcome(pairs, flow) == expected
    assert outcome(urlencode(pairs), flow) == expected
    assert outcome("?" + urlencode(pairs), flow) == expected
    assert outcome(httpx.QueryParams(pairs), flow) == expected
    assert outcome(QueryParams(urlencode(pairs)), flow) == expected
    # A plain dict has already lost its duplicates: the rules apply to what is left.
    assert outcome(dict(pairs), flow) == rules(list(dict(pairs).items()), flow)


@FAST
@given(st.text(max_size=300))
def test_any_raw_query_string_is_read_with_its_blank_values(query: str) -> None:
    for raw in (query, f"code=c0de&state={FLOW.state}&iss={ISSUER}&{query}"):
        pairs = parse_qsl(raw, keep_blank_values=True)
        assert outcome(raw, FLOW) == rules(pairs, FLOW)


@FAST
@given(
    st.sampled_from(["code", "state", "iss", "error", "error_description", "scope"]),
    st.one_of(st.just(""), VALUES),
    st.integers(0, 3),
    st.sampled_from(["pairs", "str", "multidict"]),
)
def test_any_repeated_parameter_is_refused_as_an_invalid_callback(
    name: str, value: str, position: int, shape: str
) -> None:
    pairs = [*GOOD]
    pairs.insert(position, (name, value))
    pairs.insert(3 - position, (name, dict(pairs).get(name, "x")))
    params = {"pairs": pairs, "str": urlencode(pairs), "multidict": httpx.QueryParams(pairs)}

    with pytest.raises(InvalidCallbackError) as caught:
        parse_callback(params[shape], FLOW)

    assert str(caught.value) == f"the callback repeats the {name!r} parameter"


@FAST
@given(st.one_of(TEXT, st.builds(lambda i, c: FLOW.state[:i] + c + FLOW.state[i + 1 :],
                                  st.integers(0, 42), st.characters())))  # fmt: skip
def test_a_state_is_accepted_only_when_it_is_exactly_this_flows(state: str) -> None:
    result = outcome([("code", "c0de"), ("state", state), ("iss", ISSUER)], FLOW)

    assert result == ("c0de" if state == FLOW.state else StateMismatchError)


@FAST
@given(TEXT)
def test_an_iss_is_accepted_only_when_it_is_exactly_this_flows_issuer(iss: str) -> None:
    result = outcome([("code", "c0de"), ("state", FLOW.state), ("iss", iss)], LAX_FLOW)

    assert result == ("c0de" if iss == ISSUER else IssuerMismatchError)


@FAST
@given(TEXT, st.one_of(st.none(), st.text(max_size=700)), st.one_of(st.none(), TEXT))
def test_a_provider_error_comes_back_as_a_denial_with_its_fields_capped(
    error: str, description: str | None, uri: str | None
) -> None:
    pairs = [("state", FLOW.state), ("iss", ISSUER), ("error", error)]
    pairs += [(k, v) for k, v in (("error_description", description), ("error_uri", uri)) if v]

    with pytest.raises(AuthorizationDenied) as caught:
        parse_callback(pairs, FLOW)

    assert caught.value.error == (error[:100] or "unknown_error")
    assert caught.value.error_description == (description[:500] if description else None)
    assert caught.value.error_uri == (uri or None)


# -- token responses ----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ERROR_CODES = st.sampled_from(
    ["invalid_grant", "invalid_client", "rate_limit_exceeded", "invalid_request", "", "e" * 120]
)
ERROR_BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"error": st.one_of(ERROR_CODES, ERROR_CODES, JSON)},
        optional={
            "error_description": st.one_of(st.text(max_size=600), JSON),
            "error_uri": st.one_of(TEXT, JSON),
        },
    ),
)
STATUSES = st.one_of(
    st.sampled_from([400, 401, 403, 429, 500, 503]),
    st.sampled_from([199, 200, 204, 299, 300, 399]),  # the edges of the 2xx and 3xx ranges
    st.integers(100, 599),
)
ERROR_TYPES = {"invalid_grant": InvalidGrantError, "invalid_client": InvalidClientError}


def status_rules(status: int, body: Any, retry_after: str | None) -> Any:
    """(type, error, description, uri, retry_after, response kept) a status and body give."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return (InvalidResponseError, True)
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, str) and error):
        if status == 429:
            seconds = float(retry_after) if retry_after else None
            return (RateLimitedError, "rate_limit_exceeded", None, None, seconds, True)
        return (ServerUnavailableError, True)
    description, uri = body.get("error_description"), body.get("error_uri")
    fields = (
        error[:100],
        description[:500] if isinstance(description, str) else None,
        uri if isinstance(uri, str) else None,
    )
    if status == 429 or error[:100] == "rate_limit_exceeded":
        return (RateLimitedError, *fields, float(retry_after) if retry_after else None, True)
    return (ERROR_TYPES.get(error, ProviderError), *fields, None, True)


def status_outcome(response: httpx.Response) -> Any:
    """What raise_for_status raised, as status_rules writes it (None: nothing)."""
    try:
        raise_for_status(response, "token")
    except ProviderError as exc:
        retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
        kept = exc.response is response
        return (type(exc), exc.error, exc.error_description, exc.error_uri, retry_after, kept)
    except (InvalidResponseError, ServerUnavailableError) as exc:
        return (type(exc), exc.response is response)
    return None


@FAST
@given(STATUSES, ERROR_BODIES, st.sampled_from([None, "0", "17"]))
def test_any_status_and_body_raise_exactly_the_error_they_stand_for(
    status: int, body: Any, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    response = httpx.Response(status, content=json.dumps(body).encode(), headers=headers)

    assert status_outcome(response) == status_rules(status, body, retry_after)


@FAST
@given(st.binary(max_size=200))
def test_any_bytes_as_a_token_response_give_a_token_or_an_invalid_response(
    content: bytes,
) -> None:
    response = httpx.Response(200, content=content)

    result = token_outcome(response)

    if isinstance(result, Token):
        assert result.access_token == json.loads(content)["access_token"]
    else:
        assert result == (InvalidResponseError, True)


def token_outcome(response: httpx.Response) -> Token | tuple[type[Exception], bool]:
    """The token, or the exact error type and whether it kept the response."""
    try:
        return parse_token_response(response, received_at=1000.0)
    except InvalidResponseError as exc:
        return (type(exc), exc.response is response)


GOOD_BODY = {"access_token": "at", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt"}
FIELDS = st.sampled_from(
    ["access_token", "token_type", "expires_in", "refresh_token", "scope", "id_token", "company_id"]
)


@FAST
@given(FIELDS, JSON)
def test_one_bad_field_in_a_token_response_is_an_invalid_response(name: str, value: Any) -> None:
    body = {**GOOD_BODY, name: value}

    token = token_outcome(httpx.Response(200, content=json.dumps(body).encode()))

    if not isinstance(token, Token):
        assert token == (InvalidResponseError, True)
        return
    # Accepted: then the field was one of the shapes the specification allows.
    if name in ("access_token", "refresh_token", "id_token", "company_id"):
        assert value is None or (isinstance(value, str) and value)
    elif name == "token_type":
        assert str(value).lower() == "bearer"
    elif name == "expires_in":
        assert value is None or token.expires_at == 1000.0 + float(value)
    else:
        assert value is None or isinstance(value, str | list)
    assert token.access_token == body["access_token"]


BEARER = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"])
TOKEN_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)
SCOPE_TOKEN = st.text("abcdefghijklmnopqrstuvwxyz:_.", min_size=1, max_size=10)


@FAST
@given(
    TOKEN_TEXT,
    BEARER,
    st.one_of(st.none(), st.integers(0, 10**9), st.integers(0, 10**6).map(str)),
    st.one_of(st.none(), TOKEN_TEXT),
    st.one_of(st.none(), st.lists(SCOPE_TOKEN, max_size=5)),
    st.one_of(st.none(), TOKEN_TEXT),
    st.floats(0, 2e9),
)
def test_a_well_formed_token_response_becomes_the_token_it_describes(
    access_token: str,
    token_type: str,
    expires_in: int | str | None,
    refresh_token: str | None,
    scopes: list[str] | None,
    granted: str | None,
    received_at: float,
) -> None:
    body = {
        "access_token": access_token,
        "token_type": token_type,
        "expires_in": expires_in,
        "refresh_token": refresh_token,
        "scope": None if scopes is None else " ".join(scopes),
        "company_id": granted,
    }
    response = httpx.Response(200, json={k: v for k, v in body.items() if v is not None})

    token = parse_token_response(
        response, received_at=received_at, requested_scope=("asked",), company_id="biz_1"
    )

    assert token == Token(
        access_token=access_token,
        token_type="Bearer",
        expires_at=None if expires_in is None else received_at + float(expires_in),
        refresh_token=refresh_token,
        scopes=("asked",) if scopes is None else tuple(dict.fromkeys(scopes)),
        company_id="biz_1",
        issued_at=received_at,
        granted_company_id=granted,
    )


# -- id tokens ----------------------------------------------------------------------------

KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256", "use": "sig"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"})


class JwksSender:
    """Answers every request with a JWKS document (what IdTokenValidator fetches)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks

    async def send(self, method: str, url: str, **_: Any) -> httpx.Response:
        return httpx.Response(200, json=self.jwks, request=httpx.Request(method, url))


def _validator(jwks: dict[str, Any]) -> IdTokenValidator:
    return IdTokenValidator(
        JwksSender(jwks),  # type: ignore[arg-type]
        jwks_uri=f"{ISSUER}/jwks",
        issuer=ISSUER,
        client_id="app",
    )


async def _outcome(id_token: str, jwks: dict[str, Any], **options: Any) -> Any:
    try:
        return await _validator(jwks).validate(id_token, **options)
    except Exception as exc:  # the exact type is what is compared
        return type(exc)


def _b64_json(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


HEADERS = st.one_of(
    JSON,
    st.fixed_dictionaries({"alg": st.one_of(JSON, st.sampled_from(["ES256", "none", "HS256"]))}),
    st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "jku"]), JSON, max_size=4),
)
SEGMENT = st.one_of(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=30),
    st.sampled_from(["eyJhbGciOiJFUzI1NiJ9", "e30", "bnVsbA", ""]),
)
# header.payload.signature, each part arbitrary but the header usually JSON
JWS_LIKE = st.builds(
    lambda header, rest: ".".join([_b64_json(header), *rest]),
    HEADERS,
    st.one_of(st.tuples(SEGMENT, SEGMENT), st.lists(SEGMENT, max_size=3)),
)
JWKS = {"keys": [KEY.as_dict(private=False)]}


@FEW
@given(
    st.one_of(st.text(max_size=60), JWS_LIKE, st.builds(".".join, st.lists(SEGMENT, max_size=5)))
)
def test_any_id_token_string_is_refused_with_an_id_token_error(id_token: str) -> None:
    assert asyncio.run(_outcome(id_token, JWKS, nonce="n")) is IdTokenError


CLAIMS = st.fixed_dictionaries(
    {"sub": TOKEN_TEXT, "nonce": TOKEN_TEXT},
    optional={"email": TEXT, "name": TEXT, "azp": st.just("app"), "n": st.integers()},
)


def _sign(claims: dict[str, Any], key: ECKey = KEY) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": "app", "exp": now + 300, "iat": now, **claims}
    return jwt.encode({"alg": "ES256", "kid": "k1"}, payload, key)


@FEW
@given(CLAIMS)
def test_a_signed_id_token_gives_back_exactly_the_claims_it_carries(claims: dict[str, Any]) -> None:
    id_token = _sign(claims)

    verified = asyncio.run(_outcome(id_token, JWKS, nonce=claims["nonce"]))

    assert isinstance(verified, dict)
    assert {k: verified[k] for k in claims} == claims
    assert (verified["iss"], verified["aud"]) == (ISSUER, "app")


@FEW
@given(
    CLAIMS,
    st.sampled_from(["iss", "aud", "nonce", "sub", "azp", "exp", "key"]),
    TOKEN_TEXT,
)
def test_an_id_token_with_one_claim_or_the_key_wrong_is_an_id_token_error(
    claims: dict[str, Any], wrong: str, value: str
) -> None:
    nonce, subject = claims["nonce"], claims["sub"]
    if wrong == "key":
        id_token = _sign(claims, OTHER_KEY)
    elif wrong == "exp":
        id_token = _sign({**claims, "exp": int(time.time()) - 3600})
    else:
        assume(value != {"iss": ISSUER, "aud": "app"}.get(wrong, claims.get(wrong)))
        id_token = _sign({**claims, wrong: value})

    result = asyncio.run(_outcome(id_token, JWKS, nonce=nonce, subject=subject))

    assert result is IdTokenError


@FEW
@given(CLAIMS, st.data())
def test_any_changed_character_of_a_signed_id_token_is_refused(
    claims: dict[str, Any], data: st.DataObject
) -> None:
    id_token = _sign(claims)
    at = data.draw(st.integers(0, len(id_token) - 1))
    char = data.draw(st.sampled_from("AQgw_-.x0="))
    changed = id_token[:at] + char + id_token[at + 1 :]
    # Base64 leaves spare bits in a segment's last character: only a real change must fail.
    assume([_decoded(s) for s in changed.split(".")] != [_decoded(s) for s in id_token.split(".")])

    assert asyncio.run(_outcome(changed, JWKS, nonce=claims["nonce"])) is IdTokenError


def _decoded(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        return None
