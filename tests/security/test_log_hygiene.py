"""No secret in any log line, exception or repr, with every logger at DEBUG.

A full sign-in through the Starlette app against MockWhop (login, callback, an API
call, a forced refresh after the API refuses the token, sign-out) plus the client
operations that fail in every typed way. Every secret that crossed the wire is
collected from the wire itself, then searched for everywhere.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from security_support import (
    APP_ORIGIN,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    SESSION_KEY,
    USER,
    App,
    Wire,
    build_app,
    flow_cookie,
    mint_token,
    new_mock,
)

from whop_oauth import (
    APIKeyAuth,
    AuthorizationRequest,
    DecryptionError,
    IdTokenError,
    InvalidClientError,
    InvalidGrantError,
    InvalidResponseError,
    OAuthClient,
    ProviderError,
    RateLimitedError,
    ServerUnavailableError,
    Settings,
    StateMismatchError,
    TransportError,
    WhopOAuthError,
    generate_encryption_key,
    open_store,
)
from whop_oauth.starlette import WhopUser
from whop_oauth.stores import TokenCipher


class Secrets:
    """Every secret value seen during a test, by kind."""

    def __init__(self, **known: str) -> None:
        self.kinds: defaultdict[str, set[str]] = defaultdict(set)
        for kind, value in known.items():
            self.add(kind, value)

    def add(self, kind: str, value: object) -> None:
        if isinstance(value, str) and value:
            assert len(value) >= 8, f"{kind} is too short to search for"
            self.kinds[kind].add(value)

    def harvest(self, wire: Wire) -> None:
        """Secrets the library sent (codes, verifiers, tokens) and received (tokens)."""
        for request in wire.requests:
            scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
            if scheme == "Bearer":
                self.add("access_token", credentials)
            for name, value in _fields(request.content, request.headers):
                if name in ("code", "code_verifier", "refresh_token", "client_secret", "token"):
                    self.add(name, value)
        for body in wire.bodies:
            for name, value in _fields(body, {"content-type": "application/json"}):
                if name in ("access_token", "refresh_token", "id_token"):
                    self.add(name, value)

    def found_in(self, text: str) -> list[str]:
        return [kind for kind, values in self.kinds.items() for v in values if v in text]


def _fields(content: bytes, headers: httpx.Headers | dict[str, str]) -> list[tuple[str, str]]:
    if "json" in headers.get("content-type", ""):
        try:
            data = json.loads(content)
        except ValueError:
            return []
        return (
            [(k, v) for k, v in data.items() if isinstance(v, str)]
            if isinstance(data, dict)
            else []
        )
    return parse_qsl(content.decode("utf-8", "replace"))


def _chain(error: BaseException) -> list[str]:
    texts = []
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


def _from_the_test_browser(record: logging.LogRecord) -> bool:
    """httpx's own line for a request the *test's browser* made: the callback URL it
    opened holds the code, as any access log would (see SECURITY.md). The library's
    own requests are still checked."""
    args = record.args if isinstance(record.args, tuple) else ()
    url = str(args[1]) if record.name == "httpx" and len(args) > 1 else ""
    return url.startswith(APP_ORIGIN) or "/oauth/authorize?" in url


async def _fail_in_every_way(app: App, secrets: Secrets) -> list[WhopOAuthError]:
    """Client operations that raise each typed error, with secrets in play."""
    raised: list[WhopOAuthError] = []
    mock, client, manager = app.mock, app.client, app.manager

    async def expect(error_type: type[WhopOAuthError], operation: object) -> None:
        with pytest.raises(error_type) as caught:
            await operation  # type: ignore[misc]
        raised.append(caught.value)

    await manager.save(mint_token(mock), user="user_other")
    app.wire.break_next("/oauth/token", "reset after")  # the reply to a refresh is lost
    await expect(TransportError, manager.refresh(user="user_other"))
    await expect(InvalidGrantError, manager.refresh(user="user_other"))  # reuse detected
    current = await manager.get_token(user=USER)
    mock.fail_next("token", 429, headers={"Retry-After": "1"}, times=3)
    await expect(RateLimitedError, client.refresh(current))
    mock.fail_next("userinfo", 502, b"<html>Bad Gateway</html>", times=3)
    await expect(ServerUnavailableError, client.userinfo(current))
    echo = json.dumps({"active": "yes", "token": current.access_token}).encode()
    mock.fail_next("introspect", 200, echo)
    await expect(InvalidResponseError, client.introspect(current.access_token))
    mock.fail_next("revoke", 400, {"error": "invalid_request", "error_description": "no"})
    await expect(ProviderError, client.revoke(current))
    flow = client.authorization_request()
    secrets.add("nonce", flow.nonce)
    secrets.add("code_verifier", flow.code_verifier)
    forged = {
        "access_token": "at_forged_" + "x" * 20,
        "token_type": "Bearer",
        "id_token": "eyJhbGciOiJub25lIn0.e30.forged",
    }
    mock.fail_next("token", 200, forged)
    await expect(IdTokenError, client.exchange_code("code_forged_" + "y" * 20, flow))
    stray = "code_stray_" + "z" * 20
    secrets.add("code", stray)
    with pytest.raises(StateMismatchError) as caught:
        client.parse_callback({"code": stray, "state": "s" * 43, "iss": mock.issuer}, flow)
    raised.append(caught.value)
    wrong_secret = "apik_wrong_" + "w" * 20
    secrets.add("client_secret", wrong_secret)
    async with OAuthClient(
        client_id=CLIENT_ID,
        client_secret=wrong_secret,
        redirect_uri=REDIRECT_URI,
        provider=mock.metadata,
        http_client=client._http,
    ) as impostor:
        await expect(InvalidClientError, impostor.refresh(current))
    return raised


async def test_a_full_flow_and_every_failure_log_and_raise_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    key = generate_encryption_key()
    secrets = Secrets(client_secret=CLIENT_SECRET, session_key=SESSION_KEY, encryption_key=key)
    app = build_app(
        new_mock(), store=open_store(f"sqlite:///{tmp_path}/t.db", encryption_keys=[key])
    )
    try:
        async with app.browser() as browser:
            callback, authorize = await app.start(browser)
            secrets.add("nonce", authorize["nonce"])
            flow = app.whop._site.cookies.codec.loads_flow(flow_cookie(browser)[1], max_age=600)
            assert flow is not None
            secrets.add("code_verifier", flow["flow"]["code_verifier"])
            secrets.add("cookie", flow_cookie(browser)[1])

            signed_in = await browser.get(callback)
            assert (signed_in.status_code, signed_in.headers["referrer-policy"]) == (
                303,
                "no-referrer",
            )
            session_cookie = browser.cookies["whop_session"]
            secrets.add("cookie", session_cookie)
            assert (await browser.get("/me")).status_code == 200
            app.mock.expire_access_tokens()  # the API now refuses it: one refresh, one retry
            assert (await browser.get("/me")).status_code == 200
            assert app.mock.stats.token_refresh == 1

            raised = await _fail_in_every_way(app, secrets)

            session, _ = app.whop._site.cookies.codec.loads_session(session_cookie, max_age=3600)
            assert session is not None
            secrets.add("csrf_token", session.session_id)
            headers = {"X-CSRF-Token": session.session_id, "Origin": APP_ORIGIN}
            assert (await browser.post("/auth/logout", headers=headers)).status_code == 303
        await app.manager.save(mint_token(app.mock), user="user_kept")
        other = open_store(
            f"sqlite:///{tmp_path}/t.db", encryption_keys=[generate_encryption_key()]
        )
        try:
            with pytest.raises(DecryptionError) as caught:  # the file opened with another key
                await other.get(app.client.token_key("user_kept"))
        finally:
            await other.aclose()
        raised.append(caught.value)
    finally:
        await app.store.aclose()
        await app.aclose()
    secrets.harvest(app.wire)

    for kind in ("access_token", "refresh_token", "id_token", "code", "code_verifier", "nonce"):
        assert len(secrets.kinds[kind]) >= 1, f"no {kind} was seen: the test proves nothing"
    assert len(secrets.kinds["refresh_token"]) >= 3  # sign-in, rotation, the second grant
    assert {type(error) for error in raised} == {
        TransportError,
        InvalidGrantError,
        RateLimitedError,
        ServerUnavailableError,
        InvalidResponseError,
        ProviderError,
        IdTokenError,
        StateMismatchError,
        InvalidClientError,
        DecryptionError,
    }
    library = [r for r in caplog.records if r.name.startswith("whop_oauth")]
    assert any(r.levelno == logging.DEBUG for r in library)  # DEBUG lines were captured
    formatter = logging.Formatter("%(name)s %(message)s")
    for record in caplog.records:
        if not _from_the_test_browser(record):
            line = formatter.format(record)
            assert secrets.found_in(line) == [], line
    for error in raised:
        for text in _chain(error):
            assert secrets.found_in(text) == [], text


async def test_reprs_of_every_public_object_show_no_secret(tmp_path: Path) -> None:
    key = generate_encryption_key()
    mock = new_mock()
    token = mint_token(mock)
    redis_url = "redis://:redis-password-123@127.0.0.1:1/0"
    env = {
        "WHOP_CLIENT_ID": CLIENT_ID,
        "WHOP_CLIENT_SECRET": CLIENT_SECRET,
        "WHOP_SESSION_SECRETS": SESSION_KEY,
        "WHOP_ENCRYPTION_KEYS": key,
        "WHOP_TOKEN_STORE": redis_url,
    }
    settings = Settings.from_env(env)
    sqlite = open_store(f"sqlite:///{tmp_path}/t.db", encryption_keys=[key])
    redis = open_store(redis_url, encryption_keys=[key])
    app = build_app(mock, store=sqlite)
    try:
        await app.manager.save(token, user=USER)
        stored = await app.store.get(app.key())
        flow = app.client.authorization_request()
        async with app.browser() as browser:
            await app.sign_in(browser)
            codec = app.whop._site.cookies.codec
            session, _ = codec.loads_session(browser.cookies["whop_session"], max_age=3600)
        assert session is not None
        objects: list[object] = [
            token,
            stored,
            app.client,
            flow,
            AuthorizationRequest.from_dict(flow.to_dict()),
            settings,
            sqlite,
            redis,
            app.manager,
            app.whop,
            app.manager.auth(user=USER),
            TokenCipher([key]),
            APIKeyAuth("apik_" + "k" * 20),
            session,
            WhopUser.from_session(session),
        ]
        secrets = Secrets(
            client_secret=CLIENT_SECRET,
            session_key=SESSION_KEY,
            encryption_key=key,
            access_token=token.access_token,
            refresh_token=token.refresh_token,
            code_verifier=flow.code_verifier,
            nonce=flow.nonce,
            api_key="apik_" + "k" * 20,
            redis_password="redis-password-123",
            csrf_token=session.session_id,
        )
        for thing in objects:
            for text in (repr(thing), str(thing)):
                assert secrets.found_in(text) == [], text
    finally:
        await redis.aclose()
        await app.store.aclose()
        await app.aclose()
