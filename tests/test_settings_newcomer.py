"""``Settings``: the client authentication method, an API base and a provider name from
the environment, and errors that name the variable to fix (never its value)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from whop_oauth import ConfigurationError, Settings
from whop_oauth.testing import MockClient, MockWhop

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
SECRET = "apik_s3cret-value"


async def exchange_with(method: str | None) -> Any:
    """Sign in once as a confidential client; returns the token request it sent."""
    mock = MockWhop()
    mock.add_client(MockClient("app_post", client_secret=SECRET))
    env = {"WHOP_CLIENT_ID": "app_post", "WHOP_CLIENT_SECRET": SECRET, "WHOP_ISSUER": mock.issuer}
    if method is not None:
        env["WHOP_TOKEN_ENDPOINT_AUTH_METHOD"] = method
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    transport = mock.transport()
    async with httpx.AsyncClient(transport=transport, event_hooks={"request": [record]}) as http:
        client = Settings.from_env(env).build_client(http_client=http)
        await client.load_metadata()
        flow = client.authorization_request()
        answer = await http.get(flow.url)
        query = answer.headers["location"].split("?", 1)[1]
        await client.complete_authorization(query, flow)
    return next(r for r in seen if r.url.path == "/oauth/token")


@pytest.mark.parametrize(
    ("method", "in_body", "basic"),
    [("client_secret_post", True, False), ("client_secret_basic", False, True)],
)
async def test_the_token_endpoint_auth_method_comes_from_the_environment(
    method: str, in_body: bool, basic: bool
) -> None:
    request = await exchange_with(method)

    assert (b"client_secret=" in request.content) is in_body
    assert request.headers.get("authorization", "").startswith("Basic ") is basic


def test_an_unknown_auth_method_names_the_variable_not_the_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"WHOP_TOKEN_ENDPOINT_AUTH_METHOD": "private_key_jwt_x"})

    assert "WHOP_TOKEN_ENDPOINT_AUTH_METHOD must be one of" in str(caught.value)
    assert "private_key_jwt_x" not in str(caught.value)


async def test_an_api_base_url_from_the_environment_applies_to_a_discovered_issuer() -> None:
    mock = MockWhop("https://idp.example")
    env = {
        "WHOP_CLIENT_ID": "app_mock",
        "WHOP_ISSUER": mock.issuer,
        "WHOP_API_BASE_URL": "https://api.idp.example/v2",
    }
    async with httpx.AsyncClient(transport=mock.transport()) as http:
        client = Settings.from_env(env).build_client(http_client=http)
        metadata = await client.load_metadata()

    assert metadata.api_base_url == "https://api.idp.example/v2"
    assert Settings.from_env({}).api_base_url is None


def test_the_provider_name_is_read() -> None:
    assert Settings.from_env({"WHOP_PROVIDER_NAME": "Acme ID"}).provider_name == "Acme ID"


def test_a_missing_encryption_key_names_the_variable_and_how_to_make_one() -> None:
    settings = Settings.from_env({"WHOP_TOKEN_STORE": "sqlite:///tokens.db"})

    with pytest.raises(ConfigurationError) as caught:
        settings.open_store()

    assert str(caught.value) == (
        "WHOP_ENCRYPTION_KEYS is not set: the sqlite store of WHOP_TOKEN_STORE keeps tokens "
        'encrypted; make a key with: python -c "import whop_oauth; '
        'print(whop_oauth.generate_encryption_key())"'
    )


def test_a_malformed_encryption_key_names_the_variable_and_position_never_the_value() -> None:
    bad = "not-a-key-but-a-secret-anyway"

    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"WHOP_ENCRYPTION_KEYS": f"{KEY},{bad}"})

    assert str(caught.value).startswith(
        "WHOP_ENCRYPTION_KEYS key #2 is not 32 bytes of URL-safe base64; make one with: "
    )
    assert bad not in str(caught.value)


@pytest.mark.parametrize("name", ["WHOP_SESSION_SECRETS", "WHOP_ENCRYPTION_KEYS"])
def test_a_required_variable_that_is_unset_or_empty_is_named(name: str) -> None:
    for environ in ({}, {name: " , "}):
        with pytest.raises(ConfigurationError, match=f"^{name} is not set; make one with: "):
            Settings.from_env(environ, require=[name])


def test_required_variables_that_are_set_pass() -> None:
    environ = {"WHOP_SESSION_SECRETS": "s" * 40, "WHOP_ENCRYPTION_KEYS": KEY}
    settings = Settings.from_env(environ, require=list(environ))

    assert len(settings.encryption_keys) == 1


def test_whopauth_without_session_secrets_names_the_variable() -> None:
    from whop_oauth import TokenManager
    from whop_oauth.starlette import WhopAuth
    from whop_oauth.stores import MemoryTokenStore

    settings = Settings.from_env({"WHOP_CLIENT_ID": "app_1"})
    client = settings.build_client()
    with pytest.raises(ConfigurationError, match="WHOP_SESSION_SECRETS is not set"):
        WhopAuth(client, TokenManager(client, MemoryTokenStore()), secret_keys=())
