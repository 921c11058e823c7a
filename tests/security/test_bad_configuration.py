"""Bad configurations, one table row each: refused with ``ConfigurationError`` before any
request leaves the process and before any file is created. Discovery documents that
cannot be trusted are refused with ``DiscoveryError`` and leave nothing cached."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from whop_oauth import (
    APIKeyAuth,
    ConfigurationError,
    DiscoveryError,
    OAuthClient,
    Settings,
    TokenManager,
    open_store,
    register_client,
    validate_license,
    whop_metadata,
)
from whop_oauth.starlette import WhopAuth
from whop_oauth.stores import MemoryTokenStore

SAFE = dataclasses.replace(
    whop_metadata("https://idp.example"), registration_endpoint="https://idp.example/register"
)
GOOD_KEY = "Q" * 43 + "="  # 32 bytes of URL-safe base64
SESSION_KEY = "s" * 40


@dataclass
class Ctx:
    tmp: Path
    http: httpx.AsyncClient
    sent: list[httpx.Request]


Attempt = Callable[[Ctx], Any]


def client(**changes: Any) -> Attempt:
    def make(ctx: Ctx) -> OAuthClient:
        options: dict[str, Any] = {
            "client_id": "app_1",
            "redirect_uri": "https://app.example/auth/callback",
            "provider": SAFE,
            "http_client": ctx.http,
        }
        return OAuthClient(**{**options, **changes})

    return make


def flow(**options: Any) -> Attempt:
    return lambda ctx: client()(ctx).authorization_request(**options)


def whop(**options: Any) -> Attempt:
    def make(ctx: Ctx) -> WhopAuth:
        oauth = client()(ctx)
        return WhopAuth(oauth, TokenManager(oauth, MemoryTokenStore()), **options)

    return make


def settings(**env: str) -> Attempt:
    return lambda ctx: Settings.from_env({"WHOP_CLIENT_ID": "app_1", **env})


def store(url: str, **options: Any) -> Attempt:
    return lambda ctx: open_store(url.format(tmp=ctx.tmp), **options)


SQLITE = "sqlite:///{tmp}/tokens.db"

CONFIGURATIONS: list[tuple[str, Attempt]] = [
    ("an http issuer to discover", client(provider="http://idp.example")),
    ("an http issuer in metadata", client(provider=whop_metadata("http://idp.example"))),
    (
        "an http token endpoint",
        client(provider=dataclasses.replace(SAFE, token_endpoint="http://idp.example/token")),
    ),
    ("an http redirect_uri", client(redirect_uri="http://app.example/auth/callback")),
    ("a redirect_uri with a fragment", client(redirect_uri="https://app.example/cb#x")),
    ("a javascript: redirect_uri", client(redirect_uri="javascript:alert(1)")),
    ("a relative redirect_uri", client(redirect_uri="/auth/callback")),
    (
        "a provider offering only plain PKCE",
        client(provider=dataclasses.replace(SAFE, code_challenge_methods_supported=("plain",))),
    ),
    (
        "a provider offering no PKCE method",
        client(provider=dataclasses.replace(SAFE, code_challenge_methods_supported=())),
    ),
    ("an empty client_id", client(client_id="")),
    (
        "an empty secret for client_secret_post",
        client(client_secret="", token_endpoint_auth_method="client_secret_post"),
    ),
    (
        "auth method none with a secret",
        client(client_secret="apik_x", token_endpoint_auth_method="none"),
    ),
    ("an unknown auth method", client(token_endpoint_auth_method="private_key_jwt")),
    ("a zero timeout", client(timeout=0)),
    ("negative retries", client(max_retries=-1)),
    ("a zero response cap", client(max_response_bytes=0)),
    ("an unknown token request encoding", client(token_request_encoding="xml")),
    ("a scope with a quote", client(scope='openid "profile"')),
    ("extra_params that set the state", flow(extra_params={"state": "mine"})),
    ("extra_params that set the redirect_uri", flow(extra_params={"redirect_uri": "https://e"})),
    ("a next_path to another host", flow(next_path="//evil.example")),
    ("a next_path hidden by encoding", flow(next_path="/%2F%2Fevil.example")),
    ("an empty company_id", flow(company_id="")),
    ("no session keys", whop(secret_keys=[])),
    ("a 10-character session key", whop(secret_keys=["k" * 10])),
    ("one session key instead of a list", whop(secret_keys=SESSION_KEY)),
    ("a login path to another host", whop(secret_keys=[SESSION_KEY], login_path="//evil")),
    ("WHOP_ISSUER over http", settings(WHOP_ISSUER="http://idp.example")),
    ("WHOP_REDIRECT_URI over http", settings(WHOP_REDIRECT_URI="http://app.example/cb")),
    ("a short WHOP_SESSION_SECRETS key", settings(WHOP_SESSION_SECRETS="short")),
    ("an unknown WHOP_TOKEN_STORE scheme", settings(WHOP_TOKEN_STORE="mysql://db/x")),
    ("a WHOP_CLIENT_ID with a space", settings(WHOP_CLIENT_ID="app 1")),
    ("a SQLite URL without a path", store("sqlite://", encryption_keys=[GOOD_KEY])),
    (
        "a Redis URL with a word for a port",
        store("redis://127.0.0.1:abc/0", encryption_keys=[GOOD_KEY]),
    ),
    ("a store URL without a scheme", store("tokens.db", encryption_keys=[GOOD_KEY])),
    ("a memory URL with a path", store("memory://somewhere")),
    ("a MySQL store URL", store("mysql://u:pw@db/x", encryption_keys=[GOOD_KEY])),
    (
        "a PostgreSQL URL with a word for a port",
        store("postgres://u:pw@db:abc/x", encryption_keys=[GOOD_KEY]),
    ),
    (
        "a PostgreSQL schema that is not a plain name",
        store("postgresql://u:pw@db/x", encryption_keys=[GOOD_KEY], schema='x"; DROP'),
    ),
    ("PostgreSQL without encryption keys", store("postgresql://u:pw@db/x")),
    ("SQLite without encryption keys", store(SQLITE)),
    ("Redis without encryption keys", store("redis://127.0.0.1:1/0")),
    ("an empty key list", store(SQLITE, encryption_keys=[])),
    ("a 16-byte encryption key", store(SQLITE, encryption_keys=["Q" * 22])),
    ("a key that is not base64", store(SQLITE, encryption_keys=["not base64!" * 4])),
    ("one key instead of a list", store(SQLITE, encryption_keys=GOOD_KEY)),
    ("an unknown store option", store(SQLITE, encryption_keys=[GOOD_KEY], pool=3)),
    ("a test API key in live mode", lambda ctx: APIKeyAuth("wk_test_abc", environment="live")),
    ("a live API key in test mode", lambda ctx: APIKeyAuth("wk_live_abc", environment="test")),
    ("an API key with a newline", lambda ctx: APIKeyAuth("key\r\nX-Evil: 1")),
    ("a header name with a colon", lambda ctx: APIKeyAuth("key", header="X-Key:")),
    (
        "an API key bound to an http origin",
        lambda ctx: APIKeyAuth("key", allowed_origins=["http://api.example"]),
    ),
    (
        "an API key's origins as one string",
        lambda ctx: APIKeyAuth("key", allowed_origins="https://api.whop.com"),
    ),
    (
        "a negative refresh leeway",
        lambda ctx: TokenManager(client()(ctx), MemoryTokenStore(), leeway=-1),
    ),
    (
        "an unknown undecryptable policy",
        lambda ctx: TokenManager(client()(ctx), MemoryTokenStore(), undecryptable="ignore"),  # type: ignore[arg-type]
    ),
    (
        "a license check over http",
        lambda ctx: validate_license(
            "K", api_key="k", base_url="http://api.example", http_client=ctx.http
        ),
    ),
    (
        "a license key that is a dot segment",
        lambda ctx: validate_license("..", api_key="k", http_client=ctx.http),
    ),
    (
        "redirect_uris as one string at registration",
        lambda ctx: register_client(SAFE, {"redirect_uris": "https://a/cb"}, http_client=ctx.http),
    ),
]


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[Ctx]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        yield Ctx(tmp_path, http, sent)


@pytest.mark.parametrize("attempt", [pytest.param(a, id=i) for i, a in CONFIGURATIONS])
async def test_a_bad_configuration_is_refused_before_any_request_or_file(
    ctx: Ctx, attempt: Attempt
) -> None:
    async def run() -> None:
        result = attempt(ctx)
        if inspect.isawaitable(result):
            await result

    with pytest.raises(ConfigurationError) as caught:
        await run()

    assert type(caught.value) is ConfigurationError
    assert ctx.sent == []
    assert list(ctx.tmp.iterdir()) == []


ISSUER = "https://idp.example"
DOCUMENT = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/token",
    "code_challenge_methods_supported": ["S256"],
}
DOCUMENTS: list[tuple[str, object]] = [
    ("a document for another issuer", {**DOCUMENT, "issuer": "https://evil.example"}),
    (
        "a document offering only plain PKCE",
        {**DOCUMENT, "code_challenge_methods_supported": ["plain"]},
    ),
    (
        "a document with an http token endpoint",
        {**DOCUMENT, "token_endpoint": "http://idp.example/t"},
    ),
    (
        "a document without a token endpoint",
        {k: v for k, v in DOCUMENT.items() if k != "token_endpoint"},
    ),
    ("a document that is a JSON list", [DOCUMENT]),
    ("a document that is not JSON", b"<html>metadata</html>"),
    (
        "a document with a string for iss support",
        {**DOCUMENT, "authorization_response_iss_parameter_supported": "yes"},
    ),
]


@pytest.mark.parametrize("document", [pytest.param(d, id=i) for i, d in DOCUMENTS])
async def test_an_untrustworthy_discovery_document_is_refused_and_nothing_is_cached(
    document: object,
) -> None:
    paths: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if isinstance(document, bytes):
            return httpx.Response(200, content=document)
        return httpx.Response(200, json=document)

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as http:
        oauth = OAuthClient(
            client_id="app_1",
            redirect_uri="https://app.example/cb",
            provider=ISSUER,
            http_client=http,
        )
        with pytest.raises(DiscoveryError):
            await oauth.load_metadata()
        with pytest.raises(ConfigurationError):
            oauth.authorization_request()  # nothing usable was kept

    assert paths
    assert all(path.startswith("/.well-known/") for path in paths)
