"""Property-based round-trips: what the library writes (a stored token, a saved flow, an
authorization URL, a signed cookie) reads back as exactly the same value, and anything
else reads as one exact error or as signed out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import string
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response

from whop_oauth import (
    AuthorizationRequest,
    ConfigurationError,
    InvalidValueError,
    OAuthClient,
    StateMismatchError,
    Token,
    TokenManager,
    WhopOAuthError,
    whop_metadata,
)
from whop_oauth._authorize import RESERVED_PARAMS, build_authorization_request
from whop_oauth.starlette import SessionData, WhopAuth
from whop_oauth.starlette._cookies import FLOW_SALT, CookieCodec
from whop_oauth.stores import MemoryTokenStore

FAST = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ISSUER = "https://idp.example"
METADATA = whop_metadata(ISSUER)
KEY = "k" * 40
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
NON_EMPTY = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TIMES = st.floats(1.0, 4e9)

# -- Token.to_dict / from_dict ------------------------------------------------------------

TOKENS = st.builds(
    Token,
    access_token=NON_EMPTY,
    token_type=st.sampled_from(["Bearer", "DPoP"]),
    expires_at=st.one_of(st.none(), TIMES),
    refresh_token=st.one_of(st.none(), NON_EMPTY),
    scopes=st.lists(NON_EMPTY, max_size=4).map(tuple),
    id_token=st.one_of(st.none(), NON_EMPTY),
    id_token_claims=st.dictionaries(st.text(max_size=8), JSON, max_size=4),
    company_id=st.one_of(st.none(), NON_EMPTY),
    issued_at=TIMES,
    granted_company_id=st.one_of(st.none(), NON_EMPTY),
)


@FAST
@given(TOKENS)
def test_a_token_reads_back_from_its_dict_and_from_json_as_the_same_token(token: Token) -> None:
    assert Token.from_dict(token.to_dict()) == token
    assert Token.from_dict(json.loads(json.dumps(token.to_dict()))) == token


TOKEN_FIELDS = Token(access_token="x").to_dict()


@FAST
@given(
    st.one_of(
        ANY_JSON,
        st.fixed_dictionaries(
            {"access_token": st.one_of(NON_EMPTY, ANY_JSON)},
            optional={name: ANY_JSON for name in TOKEN_FIELDS if name != "access_token"},
        ),
    )
)
def test_any_json_read_as_a_token_gives_a_token_or_an_invalid_value_error(data: Any) -> None:
    try:
        token: Token | str = Token.from_dict(data)
    except InvalidValueError as exc:
        token = f"{type(exc).__name__}: {exc}"
    if isinstance(token, str):
        assert token.startswith("InvalidValueError: not a serialised Token: ")
        return
    assert token.access_token == data["access_token"]
    assert token.expires_at is None or isinstance(token.expires_at, float)
    assert isinstance(token.issued_at, float)
    assert Token.from_dict(token.to_dict()) == token


# -- flows: the authorization URL and the saved flow --------------------------------------

URL_SAFE = string.ascii_letters + string.digits + "-_"
SCOPES = st.lists(st.text(string.ascii_lowercase + ":_.", min_size=1, max_size=10), unique=True)
EXTRA = st.dictionaries(
    st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
        lambda name: name not in RESERVED_PARAMS
    ),
    TEXT,
    max_size=3,
)
NEXT_PATHS = st.one_of(st.none(), st.text(URL_SAFE + "/?=&", max_size=20).map(lambda p: "/" + p))


@FAST
@given(
    SCOPES.map(tuple),
    st.one_of(st.none(), NON_EMPTY),
    EXTRA,
    NEXT_PATHS.filter(lambda p: p is None or not p.startswith("//")),
)
def test_the_authorization_url_parses_back_to_exactly_the_flows_parameters(
    scope: tuple[str, ...], company_id: str | None, extra: dict[str, str], next_path: str | None
) -> None:
    flow = build_authorization_request(
        METADATA,
        client_id="app_1",
        redirect_uri="https://app.example/cb",
        scope=scope,
        company_id=company_id,
        extra_params=extra,
        next_path=next_path,
    )
    url = urlsplit(flow.url)
    pairs = parse_qsl(url.query, keep_blank_values=True)
    challenge = hashlib.sha256(flow.code_verifier.encode()).digest()

    assert f"{url.scheme}://{url.netloc}{url.path}" == METADATA.authorization_endpoint
    assert len(pairs) == len(dict(pairs))  # each parameter once
    assert dict(pairs) == {
        "response_type": "code",
        "client_id": "app_1",
        "redirect_uri": "https://app.example/cb",
        "scope": " ".join(scope),
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": base64.urlsafe_b64encode(challenge).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **({} if company_id is None else {"company_id": company_id}),
        **extra,
    }
    assert (flow.scope, flow.company_id, flow.next_path) == (scope, company_id, next_path)
    assert (flow.issuer, flow.redirect_uri) == (ISSUER, "https://app.example/cb")
    assert set(flow.code_verifier + flow.state + flow.nonce) <= set(URL_SAFE)
    assert len(flow.code_verifier) >= 43
    assert len({flow.state, flow.nonce, flow.code_verifier}) == 3
    assert flow.code_verifier not in flow.url
    assert AuthorizationRequest.from_dict(json.loads(json.dumps(flow.to_dict()))) == flow


FLOW_FIELDS = AuthorizationRequest(
    url="u", state="s", code_verifier="v", nonce="n", redirect_uri="r", issuer="i", scope=()
).to_dict()
FLOW_LIKE = st.fixed_dictionaries(
    {name: st.one_of(ANY_JSON, NON_EMPTY, st.lists(TEXT, max_size=2)) for name in FLOW_FIELDS}
)


ONE_FIELD_CHANGED = st.builds(
    lambda name, value: {**FLOW_FIELDS, name: value},
    st.sampled_from(sorted(FLOW_FIELDS)),
    st.one_of(ANY_JSON, NON_EMPTY, st.lists(TEXT, max_size=2)),
)


@FAST
@given(st.one_of(ANY_JSON, FLOW_LIKE, ONE_FIELD_CHANGED))
def test_any_json_read_as_a_flow_gives_that_flow_or_an_invalid_value_error(data: Any) -> None:
    try:
        flow: AuthorizationRequest | str = AuthorizationRequest.from_dict(data)
    except InvalidValueError as exc:
        flow = type(exc).__name__
    if isinstance(flow, str):
        assert flow == "InvalidValueError"
        return
    assert flow.to_dict() == {**data, "scope": list(data["scope"])}


# -- cookies ------------------------------------------------------------------------------

CODEC = CookieCodec([KEY])
OTHER_CODEC = CookieCodec(["o" * 40])
FIELD = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=255)


@FAST
@given(
    FIELD,
    FIELD,
    st.lists(st.text("abcdefghij:_", min_size=1, max_size=12), max_size=5, unique=True),
    st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs"]), max_size=200)),
)
def test_a_session_reads_back_from_its_cookie_as_the_same_session(
    user: str, tenant: str, scopes: list[str], name: str | None
) -> None:
    session = SessionData("sid-" + user[:8], user, tenant, int(time.time()), tuple(scopes), name)

    value = CODEC.dumps_session(session)

    assert CODEC.loads_session(value, max_age=3600) == (
        SessionData(**{**_fields(session), "name": session.name or None}),
        True,
    )
    assert OTHER_CODEC.loads_session(value, max_age=3600) == (None, False)
    assert CODEC.loads_flow(value, max_age=600) is None  # another salt: not a flow


def _fields(session: SessionData) -> dict[str, Any]:
    return {name: getattr(session, name) for name in SessionData.__slots__}


@FAST
@given(st.text(st.characters(blacklist_categories=["Cs"]), min_size=256, max_size=300))
def test_a_user_id_longer_than_255_characters_is_a_configuration_error(user: str) -> None:
    with pytest.raises(ConfigurationError):
        CODEC.dumps_session(SessionData("sid", user, "t", int(time.time())))


SIGNED = CODEC.dumps_session(SessionData.new("u", "t"))
COOKIE_TEXT = st.one_of(
    st.text(max_size=200),
    st.builds(lambda a, b: f"{a}.{b}", st.text(max_size=80), st.text(max_size=40)),
    st.builds(lambda at, c: SIGNED[:at] + c + SIGNED[at + 1 :], st.integers(0, 40), TEXT),
    st.builds(lambda v: v + ".x", st.just(SIGNED)),
).filter(lambda value: value != SIGNED)  # not the one replacement that changed nothing


@FAST
@given(COOKIE_TEXT)
def test_any_cookie_value_not_signed_by_us_reads_as_signed_out(value: str) -> None:
    assert CODEC.loads_session(value, max_age=3600) == (None, False)
    assert CODEC.loads_flow(value, max_age=600) is None


@FAST
@given(st.dictionaries(st.text(max_size=12), JSON, max_size=6))
def test_a_flow_cookie_reads_back_as_the_same_dict(data: dict[str, Any]) -> None:
    value = CODEC.dumps_flow(data)

    assert CODEC.loads_flow(value, max_age=600) == data
    assert OTHER_CODEC.loads_flow(value, max_age=600) is None
    assert CODEC.loads_session(value, max_age=3600) == (None, False)
    signed_at = CODEC.flow_timestamp(value, max_age=600)
    assert signed_at is not None
    assert math.isclose(signed_at, time.time(), abs_tol=5)


def _whop(http: httpx.AsyncClient, **options: Any) -> WhopAuth:
    oauth = OAuthClient(
        client_id="app",
        redirect_uri="https://app.example/cb",
        provider=METADATA,
        http_client=http,
        max_retries=0,
    )
    return WhopAuth(oauth, TokenManager(oauth, MemoryTokenStore()), secret_keys=[KEY], **options)


WHOP = _whop(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))))


SESSION_COOKIE = WHOP._site.cookies.session_cookie
COOKIE_HEADERS = st.one_of(
    st.text(max_size=300),
    st.builds(lambda value, rest: f"{SESSION_COOKIE}={value}; {rest}", COOKIE_TEXT, TEXT),
)


@FAST
@given(COOKIE_HEADERS)
def test_any_cookie_header_leaves_the_request_signed_out(header: str) -> None:
    scope = {"type": "http", "headers": [(b"cookie", header.encode("utf-8", "surrogateescape"))]}
    # Starlette's own cookie parser says whether the header names the session cookie.
    had_cookie = SESSION_COOKIE in HTTPConnection(scope).cookies

    # An unusable session cookie is cleared; without one there is nothing to clear.
    assert WHOP._site.cookies.read_session(scope) == (None, "clear" if had_cookie else "keep")


STATE = "S" * 43
SIGNER = URLSafeTimedSerializer(
    [KEY], salt=FLOW_SALT, signer_kwargs={"digest_method": hashlib.sha256}
)
FLOW_PAYLOAD_LIKE = st.fixed_dictionaries({name: ANY_JSON for name in FLOW_FIELDS})
FLOW_PAYLOADS = st.one_of(
    ANY_JSON,
    st.fixed_dictionaries({"flow": st.one_of(ANY_JSON, FLOW_PAYLOAD_LIKE), "tenant": ANY_JSON}),
    st.fixed_dictionaries({"flow": FLOW_PAYLOAD_LIKE, "tenant": st.just("t")}),
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
        name = whop._site.cookies.flow_cookie_name(STATE)
        assert name is not None
        cookies = {name: SIGNER.dumps(payload)}  # signed with the app's key, any content
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, cookies=cookies) as browser:
            response = await browser.get(
                f"https://app.example/cb?code=c&state={STATE}&iss={ISSUER}"
            )
    assert sent == []  # nothing reached the provider
    return response.status_code, errors


@settings(FAST, max_examples=60)
@given(FLOW_PAYLOADS)
def test_a_signed_flow_cookie_with_any_payload_is_refused_without_calling_the_provider(
    payload: Any,
) -> None:
    status, errors = asyncio.run(_callback_with_flow_cookie(payload))

    assert status == 400
    assert [type(error) for error in errors] == [StateMismatchError]
