"""UserTokenAuth against a recording TokenSource: what it asks for, and where tokens may go.

The flow is driven by hand (httpx's own way of testing an Auth), so each assertion is
about one step: which token a refresh is told was rejected, which origins count.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from whop_oauth import ConfigurationError, Token, UserTokenAuth
from whop_oauth._origins import Origin, origin_or_none, parse_origin

PROVIDER = frozenset({("https", "id.example", 443), ("https", "api.example", 443)})


@dataclasses.dataclass
class RecordingSource:
    """A TokenSource that hands out numbered tokens and remembers every call."""

    issued: int = 0
    calls: list[tuple[str, dict[str, object]]] = dataclasses.field(default_factory=list)

    def _next(self) -> Token:
        self.issued += 1
        return Token(access_token=f"at-{self.issued}", token_type="Bearer")

    async def get_token(self, *, user: str, tenant: str = "default") -> Token:
        self.calls.append(("get_token", {"user": user, "tenant": tenant}))
        return self._next()

    async def refresh(
        self, *, user: str, tenant: str = "default", rejected_access_token: str | None = None
    ) -> Token:
        self.calls.append(
            ("refresh", {"user": user, "tenant": tenant, "rejected": rejected_access_token})
        )
        return self._next()

    def provider_origins(self) -> frozenset[Origin]:
        return PROVIDER


async def test_a_401_tells_the_source_which_access_token_was_rejected() -> None:
    """The manager skips a refresh another worker made only if it knows the rejected token."""
    source = RecordingSource()
    auth = UserTokenAuth(source, user="u1", tenant="biz_1")
    flow = auth.async_auth_flow(httpx.Request("GET", "https://api.example/v1/me"))

    sent = await flow.__anext__()
    assert sent.headers["Authorization"] == "Bearer at-1"
    retried = await flow.asend(httpx.Response(401, request=sent))

    assert retried.headers["Authorization"] == "Bearer at-2"
    assert source.calls == [
        ("get_token", {"user": "u1", "tenant": "biz_1"}),
        ("refresh", {"user": "u1", "tenant": "biz_1", "rejected": "at-1"}),
    ]
    with pytest.raises(StopAsyncIteration):
        await flow.asend(httpx.Response(200, request=retried))


async def test_a_request_to_a_foreign_origin_asks_the_source_for_nothing() -> None:
    source = RecordingSource()
    auth = UserTokenAuth(source, user="u1")
    flow = auth.async_auth_flow(httpx.Request("GET", "https://elsewhere.example/"))

    sent = await flow.__anext__()

    assert "Authorization" not in sent.headers
    assert source.calls == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example", True),
        ("https://api.example:443/v1", True),
        ("https://API.example/v1", True),
        ("https://api.example:8443/v1", False),
        ("http://api.example/v1", False),
        ("https://files.example:8443/x", True),
        ("https://files.example/x", False),
        ("ftp://api.example/", False),
        ("/relative/path", False),
    ],
)
def test_only_exact_origins_get_the_token(url: str, expected: bool) -> None:
    auth = UserTokenAuth(
        RecordingSource(), user="u1", allowed_origins=["https://files.example:8443"]
    )
    assert auth.sends_token_to(url) is expected


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://a.example", ("https", "a.example", 443)),
        ("http://a.example/x", ("http", "a.example", 80)),
        ("https://a.example:8443/x", ("https", "a.example", 8443)),
        ("http://a.example:443", ("http", "a.example", 443)),
    ],
)
def test_an_origin_keeps_an_explicit_port_and_fills_in_the_default(
    url: str, origin: Origin
) -> None:
    assert origin_or_none(url) == origin
    assert origin_or_none(httpx.URL(url)) == origin
    assert parse_origin(url) == origin


@pytest.mark.parametrize(
    "url", ["ftp://a.example/", "https://", "mailto:someone@a.example", "//a.example/x", "a b"]
)
def test_a_url_without_an_http_origin_has_none(url: str) -> None:
    assert origin_or_none(url) is None
    with pytest.raises(ConfigurationError) as caught:
        parse_origin(url)
    assert str(caught.value) == "an allowed origin must be an absolute http(s) URL"


def test_one_string_for_allowed_origins_is_refused_with_what_to_pass() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UserTokenAuth(RecordingSource(), user="u1", allowed_origins="https://files.example")
    assert str(caught.value) == "allowed_origins must be a list of URLs, not one string"


def test_a_sync_flow_is_refused_with_the_reason() -> None:
    auth = UserTokenAuth(RecordingSource(), user="u1")
    with pytest.raises(ConfigurationError) as caught:
        auth.sync_auth_flow(httpx.Request("GET", "https://api.example/"))
    assert str(caught.value) == (
        "UserTokenAuth is async: use it with httpx.AsyncClient (a sync flow would block "
        "on the token store and the refresh lock)"
    )
