"""Items of the client security checklist (SECURITY.md) that no other test proves."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from itsdangerous import BadSignature, URLSafeTimedSerializer
from security_support import (
    APP_ORIGIN,
    REDIRECT_URI,
    SESSION_KEY,
    USER,
    App,
    build_app,
    edit_query,
    flow_cookie,
    mint_token,
    query_of,
)

from whop_oauth import (
    DecryptionError,
    InvalidGrantError,
    OAuthClient,
    Token,
    TokenKey,
    TokenManager,
    TransportError,
    generate_encryption_key,
    whop_metadata,
)
from whop_oauth.starlette import SessionData, WhopAuth
from whop_oauth.starlette._cookies import SESSION_SALT, CookieCodec
from whop_oauth.stores import MemoryTokenStore, TokenCipher
from whop_oauth.testing import MockWhop

# -- redirect URI, PKCE, return targets ------------------------------------------------

FORGED = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "Forwarded": "host=evil.example;proto=https",
}


async def test_the_redirect_uri_comes_from_configuration_never_from_host_or_forwarded_headers(
    app: App, browser: httpx.AsyncClient
) -> None:
    login = await browser.get("/auth/login", headers=FORGED)
    assert query_of(login.headers["location"])["redirect_uri"] == REDIRECT_URI

    await browser.get(await app.authorize(login), headers=FORGED)

    token_request = next(r for r in app.wire.requests if r.url.path == "/oauth/token")
    assert query_of("?" + token_request.content.decode())["redirect_uri"] == REDIRECT_URI


@pytest.mark.parametrize("target", ["http://evil.example/steal", "https://evil.example/steal"])
async def test_a_forged_host_cannot_turn_the_return_target_into_an_open_redirect(
    app: App, browser: httpx.AsyncClient, target: str
) -> None:
    login = await browser.get("/auth/login", params={"next": target}, headers=FORGED)
    callback = await browser.get(await app.authorize(login))

    assert callback.status_code == 303
    # At most the path survives (the forged Host matched the URL's origin): never the host.
    assert callback.headers["location"] in ("/steal", "/")
    assert httpx.URL(APP_ORIGIN).join(callback.headers["location"]).host == "127.0.0.1"


async def test_the_token_request_proves_the_verifier_behind_the_urls_s256_challenge(
    app: App, browser: httpx.AsyncClient
) -> None:
    callback, authorize = await app.start(browser)
    cookie_name, _ = flow_cookie(browser)
    await browser.get(callback)

    body = query_of("?" + app.wire.requests[0].content.decode())
    verifier = body["code_verifier"]
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["code_challenge"] == create_s256_code_challenge(verifier)
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert verifier not in str(authorize)
    assert verifier not in cookie_name
    assert "plain" not in str(authorize)


# -- callback pages -------------------------------------------------------------------


async def test_a_refused_callback_page_loads_nothing_and_escapes_the_providers_words(
    mock: MockWhop,
) -> None:
    app = build_app(mock, default_pages=True)
    try:
        async with app.browser() as browser:
            callback, _ = await app.start(browser)
            script = "<script>alert(1)</script>"
            denied = edit_query(
                callback,
                drop=["code"],
                add=[("error", "access_denied"), ("error_description", script)],
            )
            page = await browser.get(denied)
    finally:
        await app.aclose()

    assert page.status_code == 400
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert script not in page.text
    assert "&lt;script&gt;" in page.text
    assert query_of(callback)["state"] not in page.text
    assert "src=" not in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no link to anywhere else


# -- bearer tokens --------------------------------------------------------------------


async def test_the_bearer_token_travels_only_in_the_authorization_header(
    app: App, browser: httpx.AsyncClient
) -> None:
    await app.sign_in(browser)
    stored = await app.store.get(app.key())
    assert stored is not None

    assert (await browser.get("/account")).status_code == 200

    api = [r for r in app.wire.requests if r.url.path.startswith("/api/")]
    assert [r.headers["authorization"] for r in api] == [f"Bearer {stored.token.access_token}"]
    assert stored.token.access_token not in str(api[0].url)
    assert api[0].content == b""


async def test_the_bearer_token_never_follows_a_redirect_to_another_origin(mock: MockWhop) -> None:
    app = build_app(mock)
    await app.manager.save(mint_token(mock), user=USER)
    seen: dict[str, str | None] = {}

    def api(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] = request.headers.get("authorization")
        if request.url.path == "/api/v1/moved":
            return httpx.Response(302, headers={"location": "https://evil.example/collect"})
        if request.url.path == "/api/v1/here":
            return httpx.Response(302, headers={"location": f"{mock.issuer}/api/v1/there"})
        if request.url.path == "/api/v1/down":  # https to http on the same host
            plain = mock.issuer.replace("https://", "http://")
            return httpx.Response(302, headers={"location": f"{plain}/api/v1/plain"})
        return httpx.Response(401 if request.url.host == "evil.example" else 200)

    auth = app.manager.auth(user=USER)
    async with httpx.AsyncClient(
        auth=auth, transport=httpx.MockTransport(api), follow_redirects=True
    ) as http:
        moved = await http.get(f"{mock.issuer}/api/v1/moved")
        same = await http.get(f"{mock.issuer}/api/v1/here")
        await http.get(f"{mock.issuer}/api/v1/down")
        direct = await http.get("https://evil.example/direct")
    await app.aclose()

    assert seen["https://evil.example/collect"] is None
    assert seen["https://evil.example/direct"] is None
    assert seen[mock.issuer.replace("https://", "http://") + "/api/v1/plain"] is None
    assert seen[f"{mock.issuer}/api/v1/there"] is not None  # same origin keeps it
    assert (moved.status_code, same.status_code, direct.status_code) == (401, 200, 401)
    assert mock.stats.token_refresh == 0  # another origin's 401 says nothing about our token


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@asynccontextmanager
async def tls_provider(cert: Path, key: Path) -> AsyncIterator[str]:
    """A loopback HTTPS server with a self-signed certificate that refuses every grant."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    body = b'{"error":"invalid_grant"}'
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
    answer += b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_tls_certificates_are_verified_by_default(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    token = Token("at_1", refresh_token="rt_1")
    async with tls_provider(cert, key) as base:
        unverified = OAuthClient(
            client_id="app_1",
            redirect_uri=REDIRECT_URI,
            provider=whop_metadata(base),
            max_retries=0,
        )
        with pytest.raises(TransportError) as caught:
            await unverified.refresh(token)
        await unverified.aclose()
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value.__cause__)

        trusting = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trusting) as http:
            trusted = OAuthClient(
                client_id="app_1",
                redirect_uri=REDIRECT_URI,
                provider=whop_metadata(base),
                http_client=http,
            )
            with pytest.raises(InvalidGrantError):  # the same server, reached once trusted
                await trusted.refresh(token)

        oauth = OAuthClient(client_id="app_1", redirect_uri=REDIRECT_URI)
        whop = WhopAuth(oauth, TokenManager(oauth, MemoryTokenStore()), secret_keys=[SESSION_KEY])
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await whop.http_client.get(base)  # the client users' API calls go through
        await whop.aclose()
        await oauth.aclose()


# -- refresh and expiry ---------------------------------------------------------------


async def test_a_token_without_expiry_is_used_until_refused_then_refreshed_once(
    app: App, browser: httpx.AsyncClient
) -> None:
    await app.sign_in(browser)
    stored = await app.store.get(app.key())
    assert stored is not None
    await app.store.put(
        app.key(), Token(stored.token.access_token, refresh_token=stored.token.refresh_token)
    )
    assert (await browser.get("/account")).status_code == 200
    assert app.mock.stats.token_refresh == 0

    app.mock.expire_access_tokens()
    assert (await browser.get("/account")).status_code == 200
    assert app.mock.stats.token_refresh == 1


async def test_a_provider_key_rotation_costs_one_jwks_fetch_and_sign_in_goes_on(
    app: App,
) -> None:
    for rotate in (False, True):
        if rotate:
            app.mock.rotate_signing_key(keep_previous=False)
        async with app.browser() as browser:
            await app.sign_in(browser)

    assert app.wire.hits["/.well-known/jwks.json"] == 2


async def test_a_code_read_from_an_access_log_is_spent_and_useless_without_the_verifier(
    app: App, browser: httpx.AsyncClient
) -> None:
    callback, _ = await app.start(browser)
    await browser.get(callback)  # the access log now holds the callback URL
    attacker = app.client.authorization_request()

    with pytest.raises(InvalidGrantError):
        await app.client.exchange_code(query_of(callback)["code"], attacker)
    assert app.mock.stats.token_code == 1


async def test_sign_out_of_a_confidential_client_revokes_the_grant_at_the_provider(
    app: App, browser: httpx.AsyncClient
) -> None:
    await app.sign_in(browser)
    stored = await app.store.get(app.key())
    assert stored is not None
    codec = app.whop._site.cookies.codec
    session, _ = codec.loads_session(browser.cookies["whop_session"], max_age=3600)
    assert session is not None

    await browser.post(
        "/auth/logout", headers={"X-CSRF-Token": session.session_id, "Origin": APP_ORIGIN}
    )

    assert await app.store.get(app.key()) is None
    assert app.mock.is_revoked(stored.token.refresh_token or "")


# -- keys -----------------------------------------------------------------------------


def test_key_rotation_puts_the_new_key_first_for_cookies_and_for_tokens_at_rest() -> None:
    new, old = "n" * 40, "o" * 40
    session = SessionData.new(USER, "default")
    rotated = CookieCodec([new, old])
    assert CookieCodec([new]).loads_session(rotated.dumps_session(session), max_age=60)[0]
    assert CookieCodec([old]).loads_session(rotated.dumps_session(session), max_age=60)[0] is None
    assert rotated.loads_session(CookieCodec([old]).dumps_session(session), max_age=60) == (
        session,
        False,
    )  # still signed in, and re-signed with the new key

    new_key, old_key = generate_encryption_key(), generate_encryption_key()
    row = TokenKey("default", USER, "https://api.whop.com", "app_1")
    blob = TokenCipher([new_key, old_key]).encrypt(row, Token("at_1"), version=1)
    assert TokenCipher([new_key]).decrypt(row, blob, version=1).access_token == "at_1"
    with pytest.raises(DecryptionError):
        TokenCipher([old_key]).decrypt(row, blob, version=1)
    older = TokenCipher([old_key]).encrypt(row, Token("at_0"), version=1)
    assert TokenCipher([new_key, old_key]).decrypt(row, older, version=1).access_token == "at_0"


def test_cookies_are_signed_with_hmac_sha256_under_a_salt_per_purpose() -> None:
    value = CookieCodec([SESSION_KEY]).dumps_session(SessionData.new(USER, "default"))

    def reader(salt: str, digest: object) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            SESSION_KEY, salt=salt, signer_kwargs={"digest_method": digest}
        )

    assert reader(SESSION_SALT, hashlib.sha256).loads(value)["sub"] == USER
    for salt, digest in ((SESSION_SALT, hashlib.sha1), ("whop_oauth.flow", hashlib.sha256)):
        with pytest.raises(BadSignature):
            reader(salt, digest).loads(value)


def test_every_test_named_in_security_md_exists() -> None:
    root = Path(__file__).parents[2]
    text = (root / "SECURITY.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)

    assert len(named) >= 60
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (root / path).exists()
        or not re.search(rf"^(async )?def {name}\(", (root / path).read_text(), re.MULTILINE)
    ]
    assert missing == []
