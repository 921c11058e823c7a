"""Bad inputs, one table row each: the typed error it raises, and proof that nothing changed.

Callbacks go through the real Starlette app against MockWhop: a refused callback calls
no endpoint at all, writes nothing to the store and changes no session. Token responses
are injected at the mock's token endpoint, at sign-in and at refresh: the request is sent
once, nothing is stored, and a grant stored before stays as it was and keeps working.
Bad configurations have their own table in ``test_bad_configuration.py``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from joserfc import jwt
from joserfc.jwk import ECKey
from security_support import (
    CLIENT_ID,
    USER,
    App,
    edit_query,
    flow_cookie,
    mint_token,
    query_of,
    set_flow_cookie,
)

from whop_oauth import (
    AuthorizationDenied,
    IdTokenError,
    InvalidCallbackError,
    InvalidClientError,
    InvalidGrantError,
    InvalidResponseError,
    IssuerMismatchError,
    ProviderError,
    ServerUnavailableError,
    StateMismatchError,
)
from whop_oauth.starlette import SessionData
from whop_oauth.starlette._cookies import CookieCodec
from whop_oauth.testing import MockWhop

# -- callbacks ---------------------------------------------------------------------------

Prepare = Callable[[App, httpx.AsyncClient], Awaitable[str]]
Edits = Callable[[dict[str, str]], dict[str, Any]]


def edit(edits: Edits) -> Prepare:
    """Start a real sign-in, then change the callback URL the provider sent back."""

    async def prepare(app: App, browser: httpx.AsyncClient) -> str:
        callback, _ = await app.start(browser)
        return edit_query(callback, **edits(query_of(callback)))

    return prepare


async def state_not_utf8(app: App, browser: httpx.AsyncClient) -> str:
    callback, _ = await app.start(browser)
    return callback.replace(f"state={query_of(callback)['state']}", "state=%FF%FE")


async def attackers_callback(app: App, browser: httpx.AsyncClient) -> str:
    await app.start(browser)  # the victim's own sign-in is under way
    async with app.browser() as attacker:
        callback, _ = await app.start(attacker)
    return callback  # login CSRF: the attacker's code and state, opened by the victim


async def attackers_state(app: App, browser: httpx.AsyncClient) -> str:
    callback, _ = await app.start(browser)
    async with app.browser() as attacker:
        theirs, _ = await app.start(attacker)
    return edit_query(callback, replace={"state": query_of(theirs)["state"]})


async def replayed(app: App, browser: httpx.AsyncClient) -> str:
    callback, _ = await app.start(browser)
    assert (await browser.get(callback)).status_code == 303
    return callback


async def expired_flow(app: App, browser: httpx.AsyncClient) -> str:
    real = TimestampSigner.get_timestamp
    with pytest.MonkeyPatch.context() as patch:  # the login happened eleven minutes ago
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 660)
        callback, _ = await app.start(browser)
    return callback


def cookie_swap(change: Callable[[App, str], str]) -> Prepare:
    """Start a sign-in, then replace the flow cookie's value."""

    async def prepare(app: App, browser: httpx.AsyncClient) -> str:
        callback, _ = await app.start(browser)
        name, value = flow_cookie(browser)
        set_flow_cookie(browser, name, change(app, value))
        return callback

    return prepare


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


async def no_flow_cookie(app: App, browser: httpx.AsyncClient) -> str:
    callback, _ = await app.start(browser)
    browser.cookies.delete(flow_cookie(browser)[0])
    return callback


def _other_key_cookie(app: App, value: str) -> str:
    data = app.whop._site.cookies.codec.loads_flow(value, max_age=600)
    assert data is not None
    return CookieCodec(["x" * 40]).dumps_flow(data)


def _session_as_flow(app: App, value: str) -> str:
    return app.whop._site.cookies.codec.dumps_session(SessionData.new(USER, "default"))


ERROR = {"error": "access_denied", "error_description": "The user denied access"}


def _error(q: dict[str, str], **extra: str) -> dict[str, Any]:
    return {"drop": ["code"], "add": list({**ERROR, **extra}.items())}


CALLBACKS = [
    ("no code", edit(lambda q: {"drop": ["code"]}), InvalidCallbackError),
    ("an empty code", edit(lambda q: {"replace": {"code": ""}}), InvalidCallbackError),
    ("the code twice", edit(lambda q: {"add": [("code", q["code"])]}), InvalidCallbackError),
    ("two different codes", edit(lambda q: {"add": [("code", "c2")]}), InvalidCallbackError),
    ("the state twice", edit(lambda q: {"add": [("state", q["state"])]}), InvalidCallbackError),
    ("iss twice", edit(lambda q: {"add": [("iss", q["iss"])]}), InvalidCallbackError),
    (
        "70 parameters",
        edit(lambda q: {"add": [(f"p{i}", "x") for i in range(70)]}),
        InvalidCallbackError,
    ),
    ("a 20 kB parameter", edit(lambda q: {"add": [("x", "x" * 20_000)]}), InvalidCallbackError),
    ("a 20 kB code", edit(lambda q: {"replace": {"code": "c" * 20_000}}), InvalidCallbackError),
    (
        "a front-channel access_token",
        edit(lambda q: {"add": [("access_token", "at_x"), ("token_type", "Bearer")]}),
        InvalidCallbackError,
    ),
    (
        "a front-channel id_token",
        edit(lambda q: {"add": [("id_token", "a.b.c")]}),
        InvalidCallbackError,
    ),
    ("no state", edit(lambda q: {"drop": ["state"]}), StateMismatchError),
    ("an empty state", edit(lambda q: {"replace": {"state": ""}}), StateMismatchError),
    ("an unknown state", edit(lambda q: {"replace": {"state": "s" * 43}}), StateMismatchError),
    (
        "a state sharing only the cookie's prefix",
        edit(lambda q: {"replace": {"state": q["state"][:16] + "x" * 27}}),
        StateMismatchError,
    ),
    ("a state that is not UTF-8", state_not_utf8, StateMismatchError),
    ("the attacker's whole callback (login CSRF)", attackers_callback, StateMismatchError),
    ("this browser's code with another browser's state", attackers_state, StateMismatchError),
    ("a replayed callback", replayed, StateMismatchError),
    ("a flow cookie older than ten minutes", expired_flow, StateMismatchError),
    ("no flow cookie", no_flow_cookie, StateMismatchError),
    (
        "a flow cookie with a forged signature",
        cookie_swap(lambda a, v: _flip(v, len(v) - 5)),
        StateMismatchError,
    ),
    (
        "a flow cookie with an edited payload",
        cookie_swap(lambda a, v: _flip(v, 3)),
        StateMismatchError,
    ),
    ("a flow cookie signed with another key", cookie_swap(_other_key_cookie), StateMismatchError),
    ("a session cookie as the flow cookie", cookie_swap(_session_as_flow), StateMismatchError),
    ("error=access_denied", edit(_error), AuthorizationDenied),
    (
        "an error with a script in its description",
        edit(lambda q: _error(q, error_description="<script>alert(1)</script>")),
        AuthorizationDenied,
    ),
    (
        "an error next to a code",
        edit(lambda q: {"add": [("error", "server_error")]}),
        AuthorizationDenied,
    ),
    (
        "an error with a forged state",
        edit(lambda q: {**_error(q), "replace": {"state": "f" * 43}}),
        StateMismatchError,
    ),
    (
        "another issuer's iss",
        edit(lambda q: {"replace": {"iss": "https://evil.example"}}),
        IssuerMismatchError,
    ),
    ("no iss", edit(lambda q: {"drop": ["iss"]}), IssuerMismatchError),
    ("an empty iss", edit(lambda q: {"replace": {"iss": ""}}), IssuerMismatchError),
    (
        "iss with a trailing slash",
        edit(lambda q: {"replace": {"iss": q["iss"] + "/"}}),
        IssuerMismatchError,
    ),
    (
        "iss in upper case",
        edit(lambda q: {"replace": {"iss": q["iss"].upper()}}),
        IssuerMismatchError,
    ),
]


def _snapshot(app: App, browser: httpx.AsyncClient) -> tuple[object, ...]:
    return (
        dict(app.wire.hits),  # every request the library made, by path
        app.mock.stats.token_requests,
        list(app.store.writes),
        browser.cookies.get("whop_session"),
    )


@pytest.mark.parametrize(
    ("prepare", "expected"), [pytest.param(p, e, id=i) for i, p, e in CALLBACKS]
)
async def test_a_bad_callback_is_refused_with_a_typed_error_and_changes_nothing(
    app: App, browser: httpx.AsyncClient, prepare: Prepare, expected: type[Exception]
) -> None:
    url = await prepare(app, browser)
    before = _snapshot(app, browser)

    response = await browser.get(url)

    assert [type(error) for error in app.errors] == [expected]
    assert response.status_code == 400
    assert response.headers["referrer-policy"] == "no-referrer"
    assert _snapshot(app, browser) == before  # no endpoint called, nothing stored


# -- token responses ---------------------------------------------------------------------

DROP = object()
Reply = Callable[[MockWhop, str | None], tuple[int, Any, dict[str, str]]]


def raw(status: int, body: bytes | dict[str, Any], **headers: str) -> Reply:
    return lambda mock, nonce: (status, body, headers)


def _token_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "access_token": "at_injected",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "rt_injected",
        "scope": "openid profile email",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not DROP}


def fields(**changes: Any) -> Reply:
    return lambda mock, nonce: (200, _token_fields(**changes), {})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(mock: MockWhop, nonce: str | None, changes: dict[str, Any]) -> dict[str, Any]:
    claims = mock.id_token_claims(USER, client_id=CLIENT_ID, nonce=nonce)
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not DROP}


def id_token(sign: str = "mock", **changes: Any) -> Reply:
    """A good token response whose id_token has ``changes`` or is signed another way."""

    def reply(mock: MockWhop, nonce: str | None) -> tuple[int, Any, dict[str, str]]:
        claims = _claims(mock, nonce, changes)
        kid = mock.jwks()["keys"][0]["kid"]
        body = _b64(json.dumps(claims).encode())
        if sign == "mock":
            token = mock.sign_id_token(claims)
        elif sign == "none":
            token = f"{_b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{body}."
        elif sign == "hs256 with the public key":
            head = _b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
            secret = json.dumps(mock.jwks()["keys"][0]).encode()
            mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
            token = f"{head}.{body}.{_b64(mac)}"
        else:  # a key the provider never published, under a new kid or under its own
            rogue = ECKey.generate_key("P-256", private=True)
            header = {"alg": "ES256", "kid": "rogue" if sign == "unknown kid" else kid}
            token = jwt.encode(header, claims, rogue)
        return 200, _token_fields(id_token=token), {}

    return reply


def literal_id_token(value: str) -> Reply:
    return fields(id_token=value)


NOW = int(time.time())
HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
BIG = b'{"access_token":"' + b"a" * 1_100_000 + b'","token_type":"Bearer"}'
# 5 MB once inflated, and a valid token response if it were read whole.
BOMB = gzip.compress(b'{"access_token":"a","token_type":"Bearer"' + b" " * 5_000_000 + b"}")
LIST_ALG = _b64(json.dumps({"alg": ["ES256"]}).encode()) + ".e30.c2ln"

TOKEN_REPLIES: list[tuple[str, Reply, type[Exception]]] = [
    ("plain text", raw(200, b"ok"), InvalidResponseError),
    ("an HTML 502 page", raw(502, HTML, **{"content-type": "text/html"}), ServerUnavailableError),
    ("an HTML page with status 200", raw(200, HTML), InvalidResponseError),
    ('a truncated body {"', raw(200, b'{"'), InvalidResponseError),
    ("null", raw(200, b"null"), InvalidResponseError),
    ("an empty list", raw(200, b"[]"), InvalidResponseError),
    ("a JSON string", raw(200, b'"at_1"'), InvalidResponseError),
    ("an empty object", raw(200, b"{}"), InvalidResponseError),
    ("bytes that are not UTF-8", raw(200, b'{"access_token": "\xff\xfe"}'), InvalidResponseError),
    ("JSON nested 100,000 deep", raw(200, b"[" * 100_000), InvalidResponseError),
    ("a body over the 1 MB cap", raw(200, BIG), InvalidResponseError),
    ("a gzip bomb", raw(200, BOMB, **{"content-encoding": "gzip"}), InvalidResponseError),
    (
        "a body claiming gzip that is not",
        raw(200, b"{}", **{"content-encoding": "gzip"}),
        InvalidResponseError,
    ),
    ("a redirect", raw(302, b"", location="https://evil.example/token"), InvalidResponseError),
    ("no access_token", fields(access_token=DROP), InvalidResponseError),
    ("no token_type", fields(token_type=DROP), InvalidResponseError),
    ("an empty access_token", fields(access_token=""), InvalidResponseError),
    ("a numeric access_token", fields(access_token=12345), InvalidResponseError),
    ("a list as access_token", fields(access_token=["at"]), InvalidResponseError),
    ("a numeric token_type", fields(token_type=1), InvalidResponseError),
    ("token_type mac", fields(token_type="mac"), InvalidResponseError),
    ("token_type DPoP", fields(token_type="DPoP"), InvalidResponseError),
    ("an empty token_type", fields(token_type=""), InvalidResponseError),
    ("a negative expires_in", fields(expires_in=-5), InvalidResponseError),
    ("a non-numeric expires_in", fields(expires_in="soon"), InvalidResponseError),
    ("a boolean expires_in", fields(expires_in=True), InvalidResponseError),
    ("an object as expires_in", fields(expires_in={}), InvalidResponseError),
    (
        "expires_in NaN",
        raw(200, b'{"access_token":"a","token_type":"Bearer","expires_in":NaN}'),
        InvalidResponseError,
    ),
    (
        "expires_in 1e400",
        raw(200, b'{"access_token":"a","token_type":"Bearer","expires_in":1e400}'),
        InvalidResponseError,
    ),
    (
        "expires_in a 400-digit integer",
        raw(200, b'{"access_token":"a","token_type":"Bearer","expires_in":' + b"9" * 400 + b"}"),
        InvalidResponseError,
    ),
    (
        "expires_in a 400-digit negative integer",
        raw(200, b'{"access_token":"a","token_type":"Bearer","expires_in":-' + b"9" * 400 + b"}"),
        InvalidResponseError,
    ),
    ("a numeric refresh_token", fields(refresh_token=7), InvalidResponseError),
    ("a numeric scope", fields(scope=7), InvalidResponseError),
    ("a numeric id_token", fields(id_token=7), InvalidResponseError),
    ("an OAuth error with status 200", raw(200, {"error": "invalid_grant"}), InvalidResponseError),
    ("invalid_grant", raw(400, {"error": "invalid_grant"}), InvalidGrantError),
    ("invalid_client", raw(401, {"error": "invalid_client"}), InvalidClientError),
    ("an unknown OAuth error", raw(403, {"error": "access_denied"}), ProviderError),
    ("id_token for another audience", id_token(aud="app_other"), IdTokenError),
    ("id_token from another issuer", id_token(iss="https://evil.example"), IdTokenError),
    ("id_token with a wrong nonce", id_token(nonce="n" * 43), IdTokenError),
    ("id_token without nonce", id_token(nonce=DROP), IdTokenError),
    ("an expired id_token", id_token(exp=NOW - 3600, iat=NOW - 7200), IdTokenError),
    ("id_token issued in the future", id_token(iat=NOW + 3600, exp=NOW + 7200), IdTokenError),
    ("id_token without sub", id_token(sub=DROP), IdTokenError),
    ("id_token for another azp", id_token(azp="app_other"), IdTokenError),
    (
        "id_token with two audiences, no azp",
        id_token(aud=["app_security", "app_x"], azp=DROP),
        IdTokenError,
    ),
    ("id_token with alg none", id_token("none"), IdTokenError),
    (
        "id_token HS256-signed with the public key",
        id_token("hs256 with the public key"),
        IdTokenError,
    ),
    ("id_token signed under an unknown kid", id_token("unknown kid"), IdTokenError),
    ("id_token signed by another key under the right kid", id_token("same kid"), IdTokenError),
    ("id_token that is not a JWT", literal_id_token("not-a-jwt"), IdTokenError),
    ("id_token with a garbage header", literal_id_token("!!!.e30.c2ln"), IdTokenError),
    ("id_token whose alg is a list", literal_id_token(LIST_ALG), IdTokenError),
]
# At refresh there is no nonce to check, and a refused grant is deleted on purpose.
NOT_AT_REFRESH = {"id_token with a wrong nonce", "id_token without nonce", "invalid_grant"}


@pytest.mark.parametrize(
    ("reply", "expected"), [pytest.param(r, e, id=i) for i, r, e in TOKEN_REPLIES]
)
async def test_a_bad_token_response_at_sign_in_is_refused_and_nothing_is_stored(
    app: App, browser: httpx.AsyncClient, reply: Reply, expected: type[Exception]
) -> None:
    callback, authorize = await app.start(browser)
    status, body, headers = reply(app.mock, authorize["nonce"])
    app.mock.fail_next("token", status, body, headers)
    sent = app.mock.stats.token_requests

    response = await browser.get(callback)

    assert [type(error) for error in app.errors] == [expected]
    assert response.status_code in (400, 502, 503)
    assert app.mock.stats.token_requests == sent + 1  # sent once, never again
    assert set(app.wire.hits) <= {"/oauth/token", "/.well-known/jwks.json"}
    assert app.store.writes == []
    assert "whop_session" not in browser.cookies


#: At refresh, a bad id_token comes with a rotation the provider already made: the
#: tokens are kept (they came from the token endpoint over TLS) and the id_token is not.
ID_TOKEN_AT_REFRESH = {i for i, _, e in TOKEN_REPLIES if e is IdTokenError} - NOT_AT_REFRESH


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(r, e, id=i)
        for i, r, e in TOKEN_REPLIES
        if i not in NOT_AT_REFRESH | ID_TOKEN_AT_REFRESH
    ],
)
async def test_a_bad_refresh_response_leaves_the_stored_grant_as_it_was_and_usable(
    app: App, reply: Reply, expected: type[Exception]
) -> None:
    token = mint_token(app.mock)
    await app.manager.save(token, user=USER)
    before = await app.store.get(app.key())
    status, body, headers = reply(app.mock, None)
    app.mock.fail_next("token", status, body, headers)
    sent = app.mock.stats.token_requests

    with pytest.raises(expected) as caught:
        await app.manager.refresh(user=USER)

    assert type(caught.value) is expected
    assert app.mock.stats.token_requests == sent + 1
    assert await app.store.get(app.key()) == before
    fresh = await app.manager.refresh(user=USER)
    assert fresh.refresh_token != token.refresh_token
    assert (await app.client.userinfo(fresh))["sub"] == USER
    assert app.mock.stats.refresh_reuse_detected == 0


@pytest.mark.parametrize(
    "reply", [pytest.param(r, id=i) for i, r, _ in TOKEN_REPLIES if i in ID_TOKEN_AT_REFRESH]
)
async def test_a_refresh_with_a_bad_id_token_keeps_the_rotation_and_the_sign_ins_claims(
    app: App, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    token = mint_token(app.mock)
    await app.manager.save(token, user=USER)
    before = await app.store.get(app.key())
    assert before is not None
    status, body, headers = reply(app.mock, None)
    app.mock.fail_next("token", status, body, headers)

    with caplog.at_level(logging.WARNING, logger="whop_oauth"):
        fresh = await app.manager.refresh(user=USER)

    stored = await app.store.get(app.key())
    assert stored is not None
    assert stored.token == fresh
    assert (fresh.access_token, fresh.refresh_token) == ("at_injected", "rt_injected")
    assert fresh.id_token_claims == before.token.id_token_claims
    assert fresh.id_token == before.token.id_token
    assert any("id_token was not checked" in r.getMessage() for r in caplog.records)
