"""The mock Whop's public value types and its internal error carrier."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "MockClient",
    "MockGrant",
    "MockStats",
    "MockUser",
    "OAuthFault",
    "avatar_data_uri",
]


@dataclass(frozen=True, slots=True)
class MockClient:
    """An OAuth app registered with the mock Whop.

    A client without ``client_secret`` is public (PKCE only, like a Whop app with no
    secret); with one it is confidential and must authenticate at the token endpoint.

    ```python
    MockClient("app_web", client_secret="apik_test", redirect_uris=["https://app.test/cb"])
    ```
    """

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    redirect_uris: Sequence[str] = ()
    #: Any ``http://127.0.0.1:*``, ``http://localhost:*`` or ``http://[::1]:*`` URI is
    #: accepted (RFC 8252 §7.3: loopback ports vary), on top of ``redirect_uris``.
    allow_loopback_redirects: bool = True
    #: Shown on the consent page as "Authorize <name>".
    name: str = "Mock App"

    @property
    def is_public(self) -> bool:
        return self.client_secret is None


@dataclass(frozen=True, slots=True)
class MockUser:
    """A Whop user the mock signs in as.

    ```python
    MockUser("user_alice", name="Alice", username="alice", email="alice@example.test")
    ```
    """

    id: str
    name: str
    username: str
    email: str
    picture: str | None = None
    email_verified: bool = True


@dataclass(frozen=True, slots=True)
class MockStats:
    """Counters of what the mock answered, a snapshot taken by ``MockWhop.stats``.

    ```python
    before = mock.stats
    ...
    assert mock.stats.token_refresh == before.token_refresh + 1
    ```
    """

    authorize: int = 0  #: authorization requests received
    token_requests: int = 0  #: every request to the token endpoint, faults included
    token_code: int = 0  #: codes exchanged for tokens
    token_refresh: int = 0  #: refresh tokens rotated successfully
    refresh_reuse_detected: int = 0  #: replays of a used refresh token (grant revoked)
    code_reuse_detected: int = 0  #: replays of a used code (its grant revoked)
    invalid_grant: int = 0  #: ``invalid_grant`` errors returned
    revoke: int = 0  #: revocation requests answered 200
    introspect: int = 0  #: introspection requests answered
    userinfo: int = 0  #: userinfo requests answered 200
    api_calls: int = 0  #: API resource requests answered 200
    registrations: int = 0  #: clients registered dynamically
    faults_injected: int = 0  #: responses replaced by ``fail_next`` or ``drop_next``


@dataclass(frozen=True, slots=True)
class MockGrant:
    """What the mock knows about one grant (a sign-in and its refresh-token family).

    ```python
    assert [g.revoked for g in mock.grants] == [True]
    ```
    """

    grant_id: str
    client_id: str
    user_id: str
    scope: tuple[str, ...]
    company_id: str | None
    revoked: bool
    rotations: int  #: how many times its refresh token was rotated


class OAuthFault(Exception):
    """An RFC 6749 error response the mock sends (``error``, ``error_description``)."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers: Mapping[str, str] = MappingProxyType(dict(headers or {}))


_PALETTE = ("#5b5bd6", "#0d9488", "#d97706", "#db2777", "#2563eb", "#7c3aed")


def avatar_data_uri(name: str) -> str:
    """A small SVG avatar with the name's initials, as a ``data:`` URI (no network)."""
    initials = "".join(part[0] for part in name.split()[:2]).upper() or "?"
    color = _PALETTE[sum(map(ord, name)) % len(_PALETTE)]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
        f'<rect width="96" height="96" rx="48" fill="{color}"/>'
        '<text x="48" y="60" font-family="Helvetica,Arial,sans-serif" font-size="38" '
        f'fill="#fff" text-anchor="middle">{_xml_escape(initials)}</text></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
