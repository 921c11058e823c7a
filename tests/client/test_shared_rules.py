"""The rules the client, registration and license checks share: one place each."""

from __future__ import annotations

import math

import httpx
import pytest
from client_support import METADATA

from whop_oauth import ConfigurationError, OAuthClient, register_client, validate_license
from whop_oauth._http_options import GivenOrOwnClient, HttpOptions
from whop_oauth._no_cookies import NoCookieJar
from whop_oauth._scopes import normalise_scope, split_scopes
from whop_oauth._urls import check_url, is_loopback_host


def test_http_options_default_the_deadline_to_twice_the_timeout() -> None:
    assert HttpOptions(timeout=3.0).deadline == 6.0
    assert HttpOptions(timeout=3.0, deadline=4.5).deadline == 4.5


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"timeout": -1.0},
        {"timeout": math.inf},
        {"timeout": math.nan},
        {"timeout": True},
        {"max_retries": -1},
        {"max_retries": True},
        {"max_response_bytes": 0},
        {"timeout": 5.0, "deadline": 4.0},
        {"deadline": math.inf},
    ],
)
def test_http_options_that_cannot_work_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        HttpOptions(**options)  # type: ignore[arg-type]


async def test_every_caller_refuses_the_same_bad_timeout_before_any_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"nothing may be sent: {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(ConfigurationError, match="timeout"):
            OAuthClient(client_id="c", redirect_uri="https://a.example/cb", timeout=0)
        with pytest.raises(ConfigurationError, match="timeout"):
            await register_client(METADATA, {}, http_client=http, timeout=-1)
        with pytest.raises(ConfigurationError, match="timeout"):
            await validate_license("lic_1", api_key="k", http_client=http, timeout=math.nan)


async def test_a_given_client_is_used_and_left_open() -> None:
    async with httpx.AsyncClient() as given:
        async with GivenOrOwnClient(given) as client:
            assert client is given
        assert not given.is_closed


async def test_a_client_made_here_keeps_no_cookies_and_is_closed_even_after_an_error() -> None:
    use = GivenOrOwnClient(None)
    assert isinstance(use.client.cookies.jar, NoCookieJar)

    async def fail_inside() -> None:
        async with use:
            raise RuntimeError("the body failed")

    with pytest.raises(RuntimeError):
        await fail_inside()
    assert use.client.is_closed


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost.example", False),
        ("10.0.0.1", False),
        ("::2", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts_are_localhost_and_loopback_addresses(
    host: str | None, loopback: bool
) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/cb", "http://[::1]/cb", "http://localhost/cb", "https://a.b/c"]
)
def test_http_is_accepted_only_on_loopback(url: str) -> None:
    assert check_url(url, "redirect_uri") == url


@pytest.mark.parametrize(
    "url", ["http://a.example/cb", "https://a.example/cb#x", "ftp://a/b", "::"]
)
def test_other_urls_are_refused_by_what_they_are(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^redirect_uri "):
        check_url(url, "redirect_uri")


def test_scopes_split_on_any_whitespace_in_order_each_once() -> None:
    assert split_scopes(" openid\tprofile  email openid ") == ("openid", "profile", "email")
    assert split_scopes("   ") == ()


def test_configured_scopes_are_checked_before_they_are_de_duplicated() -> None:
    assert normalise_scope(["openid", "email", "openid"]) == ("openid", "email")
    with pytest.raises(ConfigurationError):
        normalise_scope([["openid"]])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        normalise_scope('openid "x"')
