"""Property-based tests: whatever arrives from the network or a browser, the library
answers with one of its own errors (or a signed-out state), never a crash."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response

from whop_oauth import (
    AuthorizationRequest,
    AuthorizationResponseError,
    IdTokenError,
    InvalidResponseError,
    OAuthClient,
    StateMismatchError,
    Token,
    TokenManager,
    WhopOAuthError,
    whop_metadata,
)
from whop_oauth._callback import _KNOWN as KNOWN_CALLBACK_PARAMETERS
from whop_oauth._callback import parse_callback
from whop_oauth._http import HttpSender
from whop_oauth._http_options import HttpOptions
from whop_oauth._id_token import IdTokenValidator
from whop_oauth._token_response import parse_token_response, raise_for_status
from whop_oauth.starlette import SessionData, WhopAuth
from whop_oauth.starlette._cookies import FLOW_SALT, CookieCodec
from whop_oauth.stores import MemoryTokenStore

FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ISSUER = "https://idp.example"
KEY = "k" * 40
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

# -- callback parsing ------------------------------------------------------------------

# Every parameter the callback knows, plus one it ignores.
NAMES = st.sampled_from([*sorted(KNOWN_CALLBACK_PARAMETERS), "x"])
VALUES = st.one_of(st.sampled_from([FLOW.state, ISSUER, "", "c0de"]), st.text(max_size=40))
PAIR = st.tuples(st.one_of(NAMES, st.text(max_size=10)), VALUES)
GOOD_CALLBACK = [("code", "c0de"), ("state", FLOW.state), ("iss", ISSUER)]
# Random lists, and a good callback with random extras (so the success path is explored).
PAIRS = st.one_of(
    st.lists(PAIR, max_size=12),
    st.builds(
        lambda good, extra: [*good, *extra],
        st.permutations(GOOD_CALLBACK),
        st.lists(PAIR, max_size=4),
    ),
)


def _check_callback(params: Any) -> None:
    try:
        code = parse_callback(params, FLOW)
    except AuthorizationResponseError:
        return
    assert isinstance(code, str)
    assert code


@FAST
@given(PAIRS)
def test_any_callback_parameters_give_a_code_or_an_authorization_response_error(
    pairs: list[tuple[str, str]],
) -> None:
    _check_callback(pairs)
    _check_callback(dict(pairs))
    _check_callback(httpx.QueryParams(pairs))


@FAST
@given(PAIRS)
def test_a_code_comes_back_only_with_this_flows_state_and_issuer_each_given_once(
    pairs: list[tuple[str, str]],
) -> None:
    try:
        code = parse_callback(pairs, FLOW)
    except AuthorizationResponseError:
        return
    values = dict(pairs)
    assert (values["state"], values["iss"], values["code"]) == (FLOW.state, ISSUER, code)
    assert [name for name, _ in pairs].count("code") == 1
    assert "access_token" not in values
    assert "id_token" not in values


@FAST
@given(st.text(max_size=300))
def test_any_raw_query_string_gives_a_code_or_an_authorization_response_error(
    query: str,
) -> None:
    _check_callback(query)
    _check_callback(f"state={FLOW.state}&iss={ISSUER}&{query}")


# -- token responses ----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["access_token", "token_type", "expires_in", "refresh_token", "scope", "id_token", "error"]
)
GOOD_BODY = {"access_token": "at", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt"}
TOKEN_BODIES = st.one_of(
    st.dictionaries(FIELDS, st.one_of(JSON, st.sampled_from(["Bearer", "bearer", "at"]))),
    st.builds(lambda name, value: {**GOOD_BODY, name: value}, FIELDS, JSON),
)


def _check_token_response(content: bytes, status: int = 200) -> None:
    response = httpx.Response(status, content=content)
    try:
        raise_for_status(response, "token")
        token = parse_token_response(response, received_at=1000.0)
    except WhopOAuthError:
        return
    assert isinstance(token, Token)
    assert isinstance(token.access_token, str)
    assert token.access_token
    assert token.token_type == "Bearer"
    assert token.expires_at is None or token.expires_at >= 1000.0


@FAST
@given(st.binary(max_size=200), st.integers(100, 599))
def test_any_bytes_from_the_token_endpoint_give_a_token_or_a_typed_error(
    content: bytes, status: int
) -> None:
    _check_token_response(content, status)


@FAST
@given(TOKEN_BODIES, st.sampled_from([200, 400, 401, 429, 500, 503]))
def test_any_json_object_from_the_token_endpoint_gives_a_token_or_a_typed_error(
    body: dict[str, Any], status: int
) -> None:
    _check_token_response(json.dumps(body).encode(), status)


def _validator(jwks: dict[str, Any]) -> tuple[IdTokenValidator, httpx.AsyncClient]:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=jwks))
    )
    validator = IdTokenValidator(
        HttpSender(http, HttpOptions(max_retries=0)),
        jwks_uri=f"{ISSUER}/jwks",
        issuer=ISSUER,
        client_id="app",
    )
    return validator, http


async def _validate(id_token: str) -> None:
    validator, http = _validator({"keys": []})
    try:
        await validator.validate(id_token, nonce="n")
    except (IdTokenError, InvalidResponseError):
        return
    finally:
        await http.aclose()
    raise AssertionError("an arbitrary string was accepted as an id_token")


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


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.one_of(st.text(max_size=60), JWS_LIKE, st.builds(".".join, st.lists(SEGMENT, max_size=5)))
)
def test_any_id_token_string_is_refused_with_an_id_token_error(id_token: str) -> None:
    asyncio.run(_validate(id_token))


# -- cookies ------------------------------------------------------------------------------

CODEC = CookieCodec([KEY])
COOKIE_TEXT = st.one_of(
    st.text(max_size=200),
    st.builds(lambda a, b: f"{a}.{b}", st.text(max_size=80), st.text(max_size=40)),
    st.builds(lambda v: v + ".x", st.just(CODEC.dumps_session(SessionData.new("u", "t")))),
)


@FAST
@given(COOKIE_TEXT)
def test_any_session_cookie_value_reads_as_signed_out_or_as_a_real_session(value: str) -> None:
    session, current = CODEC.loads_session(value, max_age=3600)
    assert (session is None and current is False) or isinstance(session, SessionData)
    assert CODEC.loads_flow(value, max_age=600) is None or isinstance(
        CODEC.loads_flow(value, max_age=600), dict
    )


def _whop(http: httpx.AsyncClient, **options: Any) -> WhopAuth:
    oauth = OAuthClient(
        client_id="app",
        redirect_uri="https://app.example/cb",
        provider=whop_metadata(ISSUER),
        http_client=http,
        max_retries=0,
    )
    return WhopAuth(oauth, TokenManager(oauth, MemoryTokenStore()), secret_keys=[KEY], **options)


WHOP = _whop(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))))


@FAST
@given(st.text(max_size=300))
def test_any_cookie_header_leaves_the_request_signed_out_without_raising(header: str) -> None:
    scope = {"type": "http", "headers": [(b"cookie", header.encode("utf-8", "surrogateescape"))]}
    session, _ = WHOP._site.cookies.read_session(HTTPConnection(scope))
    assert session is None


FIELD = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=255)


@FAST
@given(FIELD, FIELD, st.lists(st.text("abcdefghij:_", min_size=1, max_size=12), max_size=5))
def test_a_session_survives_the_cookie_round_trip_whatever_its_ids(
    user: str, tenant: str, scopes: list[str]
) -> None:
    session = SessionData("sid-" + user[:8], user, tenant, int(time.time()), tuple(scopes))
    read, current = CODEC.loads_session(CODEC.dumps_session(session), max_age=3600)

    assert current is True
    assert read is not None
    assert (read.user, read.tenant, read.session_id) == (user, tenant, session.session_id)


SIGNER = URLSafeTimedSerializer(
    [KEY], salt=FLOW_SALT, signer_kwargs={"digest_method": hashlib.sha256}
)
FLOW_LIKE = st.fixed_dictionaries({name: JSON for name in FLOW.to_dict()})
FLOW_PAYLOADS = st.one_of(
    JSON,
    st.fixed_dictionaries({"flow": st.one_of(JSON, FLOW_LIKE), "tenant": JSON}),
    st.fixed_dictionaries({"flow": FLOW_LIKE, "tenant": st.just("t")}),
)


async def _callback_with_flow_cookie(payload: Any) -> tuple[int, list[WhopOAuthError]]:
    sent: list[httpx.Request] = []
    errors: list[WhopOAuthError] = []

    def provider(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    def on_error(request: Request, error: WhopOAuthError, status: int) -> Response:
        errors.append(error)
        return PlainTextResponse("refused", status_code=status)

    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as http:
        whop = _whop(http, error_handler=on_error)
        app = Starlette(routes=whop.routes, middleware=[whop.middleware])
        name = whop._site.cookies.flow_cookie_name(FLOW.state)
        assert name is not None
        cookies = {name: SIGNER.dumps(payload)}  # signed with the app's key, any content
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, cookies=cookies) as browser:
            response = await browser.get(
                f"https://app.example/cb?code=c&state={FLOW.state}&iss={ISSUER}"
            )
    assert sent == []  # nothing reached the provider
    return response.status_code, errors


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(FLOW_PAYLOADS)
def test_a_signed_flow_cookie_with_any_payload_is_refused_without_calling_the_provider(
    payload: Any,
) -> None:
    status, errors = asyncio.run(_callback_with_flow_cookie(payload))

    assert status == 400
    assert [type(error) for error in errors] == [StateMismatchError]
