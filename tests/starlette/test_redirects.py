"""The return path (``?next=``) is never an open redirect."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette_support import APP_ORIGIN, Env

from whop_oauth import ConfigurationError, OAuthClient
from whop_oauth.starlette import safe_return_path

ORIGINS = {"https://app.example"}

REFUSED = [
    "//evil.com",
    "//evil.com/path",
    "///evil.com",
    "https://evil.com",
    "http://evil.com/",
    "HTTPS://evil.com",
    "https://app.example.evil.com/",
    "https://app.example@evil.com/",
    "https://evil.com#https://app.example",
    "/\\evil.com",
    "\\\\evil.com",
    "/\\/evil.com",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.com",
    "relative/path",
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "%2F%2Fevil.com",
    "/%5Cevil.com",
    "/%5cevil.com",
    "/%252F%252Fevil.com",
    "/%25252F%25252Fevil.com",
    "/\tevil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "/%09/evil.com",
    "/%0d%0a/evil.com",
    "/ /evil.com",
    "/\x00",
    "/\u200b/evil.com",
    "",
    "/" + "a" * 3000,
]

ACCEPTED = [
    ("/", "/"),
    ("/orders", "/orders"),
    ("/orders?page=2&sort=-date", "/orders?page=2&sort=-date"),
    ("/docs#install", "/docs#install"),
    ("/a/b/../c", "/a/b/../c"),
    ("/caf\u00e9", "/caf%C3%A9"),
    ("/search?q=%2Fthing", "/search?q=%2Fthing"),
    ("https://app.example/settings?tab=1", "/settings?tab=1"),
    ("https://APP.example", "/"),
]


@pytest.mark.parametrize("value", REFUSED)
def test_unsafe_return_paths_fall_back_to_home(value: str) -> None:
    assert safe_return_path(value, default="/home", origins=ORIGINS) == "/home"


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_local_paths_and_same_origin_urls_are_kept(value: str, expected: str) -> None:
    assert safe_return_path(value, default="/home", origins=ORIGINS) == expected


def test_absolute_urls_are_refused_when_no_origin_is_known() -> None:
    assert safe_return_path("https://app.example/x", default="/home") == "/home"


@given(st.text(max_size=60))
def test_whatever_comes_in_the_result_is_a_path_on_this_site(value: str) -> None:
    result = safe_return_path(value, origins=ORIGINS)
    assert result.startswith("/")
    assert not result.startswith(("//", "/\\"))
    assert httpx.URL(APP_ORIGIN).join(result).host == "127.0.0.1"


@pytest.mark.parametrize(
    "value", ["//evil.com", "https://evil.com", "/\\evil.com", "/%2F%2Fx", "http://[::1"]
)
async def test_after_sign_in_an_unsafe_next_lands_on_home(
    env: Env, browser: httpx.AsyncClient, value: str
) -> None:
    callback = await env.sign_in(browser, next=value)
    assert callback.headers["location"] == "/"


async def test_requires_redirects_with_a_full_url_next_that_still_works(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.sign_in(browser, next=f"{APP_ORIGIN}/email?x=1")
    assert callback.headers["location"] == "/email?x=1"


@pytest.mark.parametrize("value", [v for v in REFUSED if v.startswith("/")])
def test_the_client_refuses_every_path_the_web_layer_refuses(value: str) -> None:
    client = OAuthClient(client_id="app_1", redirect_uri=f"{APP_ORIGIN}/auth/callback")
    with pytest.raises(ConfigurationError):
        client.authorization_request(next_path=value)


@pytest.mark.parametrize(("value", "expected"), [a for a in ACCEPTED if a[0] == a[1]])
def test_the_client_keeps_every_local_path_the_web_layer_keeps(value: str, expected: str) -> None:
    client = OAuthClient(client_id="app_1", redirect_uri=f"{APP_ORIGIN}/auth/callback")
    assert client.authorization_request(next_path=value).next_path == expected
