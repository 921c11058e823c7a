"""``Settings.from_env()``: the WHOP_* variables, their defaults and their checks."""

from __future__ import annotations

import base64

import pytest

from whop_oauth import WHOP, WHOP_SANDBOX, ConfigurationError, OAuthClient, Settings
from whop_oauth.stores import MemoryTokenStore

SECRET = "s" * 40
#: Two well-formed encryption keys (32 bytes of URL-safe base64 each).
K1, K2 = (base64.urlsafe_b64encode(c * 32).decode() for c in (b"1", b"2"))


def test_defaults_make_a_public_whop_client_on_the_local_demo_address() -> None:
    settings = Settings.from_env({"WHOP_CLIENT_ID": "app_1"})

    assert settings.client_id == "app_1"
    assert settings.is_public_client
    assert settings.redirect_uri == "http://127.0.0.1:8000/auth/callback"
    assert settings.issuer is None
    assert settings.provider is WHOP
    assert settings.scopes == "openid profile email"
    assert str(settings.token_store) == "sqlite:///whop_oauth_tokens.db"
    assert settings.session_secrets == ()
    assert settings.encryption_keys == ()


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "WHOP_CLIENT_ID": "app_1",
            "WHOP_CLIENT_SECRET": "apik_secret",
            "WHOP_REDIRECT_URI": "https://app.example/auth/callback",
            "WHOP_ISSUER": "https://id.example/",
            "WHOP_SCOPES": "openid  email",
            "WHOP_TOKEN_STORE": "redis://:pw@cache:6379/0",
            "WHOP_SESSION_SECRETS": f"{SECRET}1, {SECRET}2",
            "WHOP_ENCRYPTION_KEYS": f"{K1},,{K2}",
        }
    )

    assert str(settings.client_secret) == "apik_secret"
    assert not settings.is_public_client
    assert settings.issuer == "https://id.example"
    assert settings.provider == "https://id.example"
    assert settings.scopes == "openid email"
    assert [str(s) for s in settings.session_secrets] == [f"{SECRET}1", f"{SECRET}2"]
    assert [str(k) for k in settings.encryption_keys] == [K1, K2]


def test_secrets_never_show_in_the_repr() -> None:
    settings = Settings.from_env(
        {
            "WHOP_CLIENT_SECRET": "apik_topsecret",
            "WHOP_TOKEN_STORE": "redis://:hunter2@cache:6379/0",
            "WHOP_SESSION_SECRETS": SECRET,
            "WHOP_ENCRYPTION_KEYS": K1,
        }
    )

    text = repr(settings) + str(settings)
    for secret in ("apik_topsecret", "hunter2", SECRET, K1):
        assert secret not in text


def test_whops_own_issuers_use_the_presets() -> None:
    assert Settings(issuer="https://api.whop.com").provider is WHOP
    assert Settings(issuer="https://sandbox-api.whop.com").provider is WHOP_SANDBOX


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHOP_CLIENT_ID", "app 1"),
        ("WHOP_REDIRECT_URI", "http://app.example/auth/callback"),
        ("WHOP_REDIRECT_URI", "/auth/callback"),
        ("WHOP_REDIRECT_URI", "https://app.example/cb#x"),
        ("WHOP_ISSUER", "http://id.example"),
        ("WHOP_ISSUER", "ftp://id.example"),
        ("WHOP_ISSUER", "https://id.example?tenant=1"),
        ("WHOP_TOKEN_STORE", "mysql://db/tokens"),
        ("WHOP_TOKEN_STORE", "tokens.db"),
        ("WHOP_SESSION_SECRETS", "too-short"),
    ],
)
def test_invalid_values_raise_a_configuration_error_naming_the_variable(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=name) as caught:
        Settings.from_env({name: value})
    assert value not in str(caught.value)


def test_loopback_redirects_and_issuers_may_use_plain_http() -> None:
    settings = Settings.from_env(
        {"WHOP_REDIRECT_URI": "http://localhost:9000/cb", "WHOP_ISSUER": "http://[::1]:9001"}
    )
    assert settings.issuer == "http://[::1]:9001"


async def test_settings_build_the_client_and_the_store() -> None:
    settings = Settings.from_env(
        {"WHOP_CLIENT_ID": "app_1", "WHOP_TOKEN_STORE": "memory://", "WHOP_SCOPES": "openid"}
    )

    async with settings.build_client() as client:
        assert isinstance(client, OAuthClient)
        assert client.client_id == "app_1"
        assert client.issuer == WHOP.issuer
        assert client.authorization_request().scope == ("openid",)
    store = settings.open_store()
    assert isinstance(store, MemoryTokenStore)
    await store.aclose()


def test_a_client_needs_a_client_id_and_sqlite_needs_keys() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ConfigurationError, match="WHOP_CLIENT_ID"):
        settings.build_client()
    with pytest.raises(ConfigurationError, match="WHOP_ENCRYPTION_KEYS is not set"):
        settings.open_store()
