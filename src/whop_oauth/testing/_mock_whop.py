"""``MockWhop``: a small, faithful fake of Whop's OAuth provider, as an ASGI app."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from .._metadata import ProviderMetadata
from ._mock_authorize import DEFAULT_SCOPE, is_loopback_host
from ._mock_claims import discovery_document, id_token_claims
from ._mock_endpoints import Endpoints
from ._mock_faults import FaultControls, Faults
from ._mock_keys import SigningKeys
from ._mock_model import MockClient, MockGrant, MockStats, MockUser, avatar_data_uri
from ._mock_records import AuthorizationRequest, parse_scope
from ._mock_state import ProviderState

__all__ = ["COMPANY_ECHO_PLACES", "WELL_KNOWN_SHAPES", "MockWhop"]

#: Where the mock can name a grant's company (``MockWhop(company_echo=...)``).
COMPANY_ECHO_PLACES = frozenset({"token_response", "id_token", "introspection"})
#: Which metadata documents the mock serves (``MockWhop(well_known=...)``).
WELL_KNOWN_SHAPES = frozenset({"both", "openid", "oauth", "split"})
#: In the "split" shape, what each document leaves out (django-oauth-toolkit's shape).
_SPLIT_OMITS = {
    "openid": ("revocation_endpoint", "introspection_endpoint"),
    "oauth": ("userinfo_endpoint",),
}

DEFAULT_CLIENT = MockClient("app_mock", name="Mock App")
DEFAULT_USER = MockUser(
    id="user_mock1",
    name="Mock User",
    username="mockuser",
    email="mock.user@example.com",
    picture=avatar_data_uri("Mock User"),
)


class MockWhop(FaultControls):
    """A fake Whop OAuth provider: an ASGI app with discovery, JWKS, authorize, token,
    userinfo, revoke, introspect, register and ``GET /api/v1/accounts/me``.

    In-process, through httpx:

    ```python
    mock = MockWhop()
    async with httpx.AsyncClient(transport=mock.transport(), base_url=mock.issuer) as http:
        doc = (await http.get("/.well-known/openid-configuration")).json()
    ```

    On a real loopback port, with a matching issuer: ``with MockWhop.on_free_port() as mock``.
    ``/oauth/authorize`` approves at once as ``login_as``'s user, unless ``consent=True``
    (then it shows an Approve / Deny page) or ``deny_next()`` was called. Faults are
    queued per endpoint: ``fail_next``, ``delay_next``, ``hold_next``, ``drop_next``.

    A ``company_id`` on the authorize URL makes the grant company-scoped (refresh
    must name it again), as at Whop. Whop documents no answer that echoes the
    company back, so the mock names it only at ``company_echo``: by default in
    introspection (an endpoint Whop does not document either), and, if asked, in
    the token response (``"token_response"``) or the id_token (``"id_token"``).
    Its JWT access tokens always carry a ``company_id`` claim (whop_oauth never
    reads it).

    ``well_known`` picks the metadata documents served: ``"both"`` (the OpenID
    document and the RFC 8414 one, alike), ``"openid"`` or ``"oauth"`` (only that
    one; the other answers 404), or ``"split"``: both, the OpenID one without
    revocation and introspection endpoints, the RFC 8414 one without userinfo, as
    django-oauth-toolkit serves them. For an issuer with a path (``.../o``), the RFC
    8414 document is served both at ``/.well-known/oauth-authorization-server/o`` and
    at ``/o/.well-known/oauth-authorization-server``.
    """

    def __init__(
        self,
        issuer: str = "https://mock-whop.test",
        *,
        clients: Mapping[str, MockClient] | None = None,
        users: Sequence[MockUser] | None = None,
        access_token_ttl: int = 3600,
        refresh_token_ttl: int | None = None,
        code_ttl: int = 300,
        consent: bool = False,
        clock: Callable[[], float] = time.time,
        company_echo: Collection[str] = ("introspection",),
        well_known: str = "both",
    ) -> None:
        issuer = issuer.rstrip("/")
        if urlsplit(issuer).scheme not in ("http", "https"):
            raise ValueError("issuer must be an http(s) URL")
        users = list(users) if users is not None else [DEFAULT_USER]
        if not users:
            raise ValueError("a MockWhop needs at least one user")
        echo = frozenset(company_echo)
        if isinstance(company_echo, str) or not echo <= COMPANY_ECHO_PLACES:
            raise ValueError(f"company_echo takes places among {sorted(COMPANY_ECHO_PLACES)}")
        if well_known not in WELL_KNOWN_SHAPES:
            raise ValueError(f"well_known is one of {sorted(WELL_KNOWN_SHAPES)}")
        self._issuer = issuer
        self._well_known = well_known
        self._keys = SigningKeys()
        self._faults = Faults()
        self._state = ProviderState(
            issuer=issuer,
            keys=self._keys,
            clients=clients if clients is not None else {DEFAULT_CLIENT.client_id: DEFAULT_CLIENT},
            users={user.id: user for user in users},
            clock=clock,
            access_ttl=access_token_ttl,
            refresh_ttl=refresh_token_ttl,
            code_ttl=code_ttl,
            company_echo=echo,
        )
        endpoints = Endpoints(self._state, self._faults, consent=consent, discovery=self._served)
        self._router = Router(routes=endpoints.routes())
        document = self.discovery_document()
        self._metadata = dataclasses.replace(
            ProviderMetadata.from_document(document, expected_issuer=issuer),
            revocation_body="json",
            api_base_url=f"{issuer}/api/v1",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._router(scope, receive, send)

    def __repr__(self) -> str:
        return f"MockWhop(issuer={self._issuer!r})"

    # -- what clients see -------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def metadata(self) -> ProviderMetadata:
        """The endpoints as ``ProviderMetadata`` (Whop's JSON revocation body)."""
        return self._metadata

    def discovery_document(self) -> dict[str, Any]:
        """The ``/.well-known/openid-configuration`` body."""
        return discovery_document(self._issuer)

    def _served(self, kind: str) -> dict[str, Any] | None:
        """The document served as ``kind`` ("openid" or "oauth"), None for a 404."""
        if self._well_known not in ("both", "split", kind):
            return None
        document = self.discovery_document()
        if self._well_known == "split":
            for name in _SPLIT_OMITS[kind]:
                document.pop(name)
        return document

    def jwks(self) -> dict[str, Any]:
        """The public keys, as served at ``/.well-known/jwks.json``."""
        return self._keys.jwks()

    def transport(self) -> httpx.ASGITransport:
        """An httpx transport that sends every request to this mock, in-process."""
        return httpx.ASGITransport(app=self._served_app())

    # -- steering the next requests ---------------------------------------------------

    def login_as(self, user_id: str) -> None:
        """Make the next authorizations approve as this user."""
        if user_id not in self._state.users:
            raise KeyError(f"no mock user {user_id!r}")
        with self._state.lock:
            self._state.current_user = user_id

    def deny_next(
        self, error: str = "access_denied", description: str = "The user denied access"
    ) -> None:
        """Answer the next valid authorization request with this error on the redirect."""
        with self._state.lock:
            self._state.denials.append((error, description))

    def override_id_token_claims(self, **claims: Any) -> None:
        """Put ``claims`` in every id_token issued from now on, e.g. ``sub="user_other"``
        for a provider that answers for another user; with no claims, stop."""
        with self._state.lock:
            self._state.id_token_overrides = dict(claims)

    def expire_access_tokens(self) -> None:
        """Expire every access token issued so far (their JWT ``exp`` is left as it was)."""
        self._state.expire_access_tokens()

    def add_user(self, user: MockUser) -> None:
        with self._state.lock:
            self._state.users[user.id] = user

    def add_client(self, client: MockClient) -> None:
        with self._state.lock:
            self._state.clients[client.client_id] = client

    # -- inspecting --------------------------------------------------------------------

    @property
    def stats(self) -> MockStats:
        """A snapshot of the counters."""
        return self._state.stats()

    @property
    def grants(self) -> list[MockGrant]:
        return self._state.grants()

    @property
    def users(self) -> Mapping[str, MockUser]:
        return MappingProxyType(dict(self._state.users))

    @property
    def clients(self) -> Mapping[str, MockClient]:
        return MappingProxyType(dict(self._state.clients))

    def is_revoked(self, token: str) -> bool:
        """Whether an access or refresh token issued here was revoked (itself or its grant)."""
        return self._state.is_revoked(token)

    def issue_tokens(
        self,
        user_id: str | None = None,
        *,
        client_id: str = DEFAULT_CLIENT.client_id,
        scope: str = "openid profile email",
        company_id: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """A token response for a new grant, without the browser round trip.

        ```python
        tokens = mock.issue_tokens("user_mock1", company_id="biz_1")
        ```
        """
        user_id = user_id or self._state.current_user
        if client_id not in self._state.clients or user_id not in self._state.users:
            raise KeyError("unknown mock client or user")
        request = AuthorizationRequest(
            client_id=client_id,
            redirect_uri="",
            scope=parse_scope(scope),
            code_challenge="",
            company_id=company_id,
        )
        return self._state.issue(request, user_id, nonce=nonce)

    # -- keys and id_tokens -----------------------------------------------------------

    @property
    def private_jwk(self) -> dict[str, Any]:
        """The current signing key, private part included (for forging test tokens)."""
        return dict(self._keys.current.as_dict(private=True))

    def rotate_signing_key(self, *, keep_previous: bool = True) -> str:
        """Sign with a new key from now on; returns its ``kid``."""
        return self._keys.rotate(keep_previous=keep_previous)

    def id_token_claims(
        self, user_id: str | None = None, *, client_id: str = "app_mock", nonce: str | None = None
    ) -> dict[str, Any]:
        """Valid id_token claims for a user, to tamper with before ``sign_id_token``."""
        now = int(self._state.clock())
        user = self._state.users[user_id or self._state.current_user]
        return id_token_claims(
            issuer=self._issuer,
            client_id=client_id,
            user=user,
            scope=DEFAULT_SCOPE,
            now=now,
            lifetime=3600,
            nonce=nonce,
            auth_time=now,
        )

    def sign_id_token(self, claims: Mapping[str, Any], **header: Any) -> str:
        """Sign exactly ``claims`` with the current key (ES256, its ``kid``)."""
        return self._keys.sign(dict(claims), **header)

    # -- real sockets -----------------------------------------------------------------

    def _served_app(self) -> ASGIApp:
        path = urlsplit(self._issuer).path
        if not path:
            return self
        # RFC 8414 §3.1: for an issuer with a path, well-known goes before the path.
        inserted = Route(f"/.well-known/oauth-authorization-server{path}", _AtPath(self))
        return Router(routes=[inserted, Mount(path, app=self)])

    @contextmanager
    def serve_in_thread(self, host: str | None = None, port: int | None = None) -> Iterator[str]:
        """Serve on the issuer's own loopback host and port; yields the base URL.

        The issuer must look like ``http://127.0.0.1:8765``; for any free port use
        ``MockWhop.on_free_port()``, which picks the port before the issuer is set.
        """
        from ._mock_server import bind_socket, serve_socket

        parts = urlsplit(self._issuer)
        if parts.scheme != "http" or parts.port is None or not is_loopback_host(parts.hostname):
            raise ValueError(
                "serve_in_thread needs an issuer like http://127.0.0.1:PORT; "
                "use MockWhop.on_free_port() to get a free port with a matching issuer"
            )
        if port is not None and port != parts.port:
            raise ValueError(f"the issuer says port {parts.port}; use MockWhop.on_free_port()")
        sock = bind_socket(host or str(parts.hostname), parts.port)
        with serve_socket(self._served_app(), sock):
            yield self._issuer

    @classmethod
    @contextmanager
    def on_free_port(cls, host: str = "127.0.0.1", **options: Any) -> Iterator[MockWhop]:
        """A ``MockWhop`` served on a free loopback port, its issuer that URL.

        ```python
        with MockWhop.on_free_port(consent=True) as mock:
            httpx.get(f"{mock.issuer}/.well-known/jwks.json")
        ```
        """
        from ._mock_server import bind_socket, serve_socket, url_host

        sock = bind_socket(host, 0)
        try:
            mock = cls(f"http://{url_host(host)}:{sock.getsockname()[1]}", **options)
        except BaseException:
            sock.close()
            raise
        with serve_socket(mock._served_app(), sock):
            yield mock


class _AtPath:
    """Serves the mock's RFC 8414 document at the path-inserted location."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "path": "/.well-known/oauth-authorization-server", "root_path": ""}
        await self._app(scope, receive, send)
