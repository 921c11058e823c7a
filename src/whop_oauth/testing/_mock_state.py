"""The mock Whop's memory: codes, grants and token families, all behind one lock.

Every check-then-change happens inside ``self.lock`` so that N concurrent
presentations of one refresh token (from threads or tasks) have exactly one winner.
Tokens are kept by their SHA-256 digest, so no repr or dump of the state holds one.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ._mock_claims import token_response
from ._mock_keys import SigningKeys
from ._mock_model import MockClient, MockGrant, MockStats, MockUser, OAuthFault
from ._mock_records import (
    Access,
    AuthorizationRequest,
    Code,
    Grant,
    Refresh,
    digest,
    parse_scope,
)

__all__ = ["ProviderState"]

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise OAuthFault("invalid_request", f"{name} is required")
    return value


def _invalid_token(description: str) -> OAuthFault:
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return OAuthFault(
        "invalid_token", description, status=401, headers={"WWW-Authenticate": challenge}
    )


class ProviderState:
    """Clients, users, and everything issued to them."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: SigningKeys,
        clients: Mapping[str, MockClient],
        users: Mapping[str, MockUser],
        clock: Callable[[], float],
        access_ttl: int,
        refresh_ttl: int | None,
        code_ttl: int,
        company_echo: frozenset[str] = frozenset(),
    ) -> None:
        self.issuer = issuer
        #: Where the granted company is named: "token_response", "id_token", "introspection".
        self.company_echo = company_echo
        self.keys = keys
        self.clock = clock
        self.lock = threading.Lock()
        self.clients = dict(clients)
        self.users = dict(users)
        self.current_user = next(iter(self.users))
        self.denials: list[tuple[str, str]] = []
        #: Claims put in every id_token issued (``MockWhop.override_id_token_claims``).
        self.id_token_overrides: dict[str, Any] = {}
        self._ttl = (access_ttl, refresh_ttl, code_ttl)
        self._codes: dict[str, Code] = {}
        self._grants: dict[str, Grant] = {}
        self._refresh: dict[str, Refresh] = {}
        self._access: dict[str, Access] = {}
        self._flows: dict[str, tuple[AuthorizationRequest, str, float]] = {}
        self._counts: Counter[str] = Counter()

    # -- counters ---------------------------------------------------------------------

    def count(self, name: str) -> None:
        with self.lock:
            self._counts[name] += 1

    def stats(self) -> MockStats:
        with self.lock:
            return MockStats(**self._counts)

    def _invalid_grant(self, description: str) -> OAuthFault:
        self._counts["invalid_grant"] += 1  # callers hold the lock
        return OAuthFault("invalid_grant", description)

    # -- authorization ----------------------------------------------------------------

    def open_flow(self, request: AuthorizationRequest, user_id: str) -> str:
        """Park a request behind the consent page; the id is the only handle to it."""
        flow_id = secrets.token_urlsafe(32)
        with self.lock:
            self._flows[flow_id] = (request, user_id, self.clock() + self._ttl[2])
        return flow_id

    def take_flow(self, flow_id: str) -> tuple[AuthorizationRequest, str] | None:
        with self.lock:
            entry = self._flows.pop(flow_id, None)
        if entry is None or self.clock() >= entry[2]:
            return None
        return entry[0], entry[1]

    def new_code(self, request: AuthorizationRequest, user_id: str) -> str:
        code = secrets.token_urlsafe(32)
        with self.lock:
            expires_at = self.clock() + self._ttl[2]
            self._codes[digest(code)] = Code(request, user_id, expires_at)
        return code

    # -- token endpoint ---------------------------------------------------------------

    def exchange_code(self, client: MockClient, params: Mapping[str, str]) -> dict[str, Any]:
        code = _required(params, "code")
        verifier = _required(params, "code_verifier")
        if not _VERIFIER.fullmatch(verifier):
            raise OAuthFault("invalid_request", "code_verifier must be 43-128 unreserved chars")
        with self.lock:
            record = self._codes.get(digest(code))
            if record is None or record.request.client_id != client.client_id:
                raise self._invalid_grant("the code is unknown or was issued to another client")
            if record.grant_id is not None:
                # RFC 6749 §4.1.2: a replayed code revokes what it was exchanged for.
                self._counts["code_reuse_detected"] += 1
                self._grants[record.grant_id].revoked = True
                raise self._invalid_grant("the code was already used; its tokens are revoked")
            if self.clock() >= record.expires_at:
                raise self._invalid_grant("the code has expired")
            if params.get("redirect_uri") != record.request.redirect_uri:
                raise self._invalid_grant("redirect_uri does not match the authorization request")
            challenge = str(create_s256_code_challenge(verifier))
            if not hmac.compare_digest(challenge, record.request.code_challenge):
                raise self._invalid_grant("PKCE verification failed")
            request = record.request
            grant = self._new_grant(request, record.user_id)
            record.grant_id = grant.grant_id
            self._counts["token_code"] += 1
            return self._mint(grant, grant.scope, nonce=request.nonce)

    def refresh(self, client: MockClient, params: Mapping[str, str]) -> dict[str, Any]:
        token = _required(params, "refresh_token")
        company_id = params.get("company_id") or None
        requested = parse_scope(params.get("scope"))
        with self.lock:
            record = self._refresh.get(digest(token))
            grant = self._grants[record.grant_id] if record else None
            if record is None or grant is None or grant.client_id != client.client_id:
                raise self._invalid_grant("the refresh token is unknown or for another client")
            if record.used:
                # Reuse detection: a replayed refresh token kills its whole family.
                self._counts["refresh_reuse_detected"] += 1
                grant.revoked = True
                raise self._invalid_grant("the refresh token was already used; grant revoked")
            if grant.revoked:
                raise self._invalid_grant("the grant was revoked")
            if record.expires_at is not None and self.clock() >= record.expires_at:
                raise self._invalid_grant("the refresh token has expired")
            if grant.company_id is not None and company_id is None:
                raise OAuthFault("invalid_request", "company_id is required for this grant")
            if company_id != grant.company_id:
                raise self._invalid_grant("company_id does not match the grant")
            if not set(requested) <= set(grant.scope):
                raise OAuthFault("invalid_scope", "the scope exceeds what the user granted")
            record.used = True
            grant.rotations += 1
            self._counts["token_refresh"] += 1
            return self._mint(grant, requested or grant.scope, nonce=None)

    def issue(
        self, request: AuthorizationRequest, user_id: str, *, nonce: str | None = None
    ) -> dict[str, Any]:
        """Tokens for a new grant, skipping the browser (``MockWhop.issue_tokens``)."""
        with self.lock:
            grant = self._new_grant(request, user_id)
            return self._mint(grant, grant.scope, nonce=nonce)

    def _new_grant(self, request: AuthorizationRequest, user_id: str) -> Grant:
        grant_id = "grant_" + secrets.token_hex(8)
        grant = Grant(
            grant_id,
            request.client_id,
            user_id,
            request.scope,
            request.company_id,
            auth_time=int(self.clock()),
        )
        self._grants[grant_id] = grant
        return grant

    def _mint(self, grant: Grant, scope: tuple[str, ...], *, nonce: str | None) -> dict[str, Any]:
        access_ttl, refresh_ttl, _ = self._ttl
        now = self.clock()
        user = self.users[grant.user_id]
        body = token_response(
            self.keys,
            self.issuer,
            grant,
            user,
            scope,
            nonce=nonce,
            now=int(now),
            ttl=access_ttl,
            company_echo=self.company_echo,
            id_token_overrides=self.id_token_overrides,
        )
        access = Access(grant.grant_id, scope, int(now), now + access_ttl)
        self._access[digest(body["access_token"])] = access
        expiry = None if refresh_ttl is None else now + refresh_ttl
        self._refresh[digest(body["refresh_token"])] = Refresh(grant.grant_id, expiry)
        return body

    # -- using, revoking, inspecting tokens ---------------------------------------------

    def bearer(self, token: str) -> tuple[MockUser, tuple[str, ...]]:
        """The user and scope behind a valid access token, or a 401 ``invalid_token``."""
        with self.lock:
            access = self._access.get(digest(token))
            if access is None:
                raise _invalid_token("the access token is unknown")
            if access.revoked or self._grants[access.grant_id].revoked:
                raise _invalid_token("the access token was revoked")
            if self.clock() >= access.expires_at:
                raise _invalid_token("the access token expired")
            return self.users[self._grants[access.grant_id].user_id], access.scope

    def revoke(self, client: MockClient, token: str) -> None:
        with self.lock:
            refresh, access = self._find(token)
            record = refresh or access
            if record is None:
                return  # RFC 7009 §2.2: unknown tokens are answered 200 too
            grant = self._grants[record.grant_id]
            if grant.client_id != client.client_id:
                raise OAuthFault("unauthorized_client", "the token was issued to another client")
            if refresh is not None:
                grant.revoked = True  # a refresh token stands for its whole grant
            elif access is not None:
                access.revoked = True

    def introspect(self, client: MockClient, token: str) -> dict[str, Any]:
        with self.lock:
            refresh, access = self._find(token)
            record = refresh or access
            grant = self._grants[record.grant_id] if record else None
            if record is None or grant is None or grant.client_id != client.client_id:
                return {"active": False}
            now = self.clock()
            user = self.users[grant.user_id]
            body: dict[str, Any] = {
                "active": not grant.revoked,
                "client_id": grant.client_id,
                "sub": user.id,
                "username": user.username,
                "iss": self.issuer,
            }
            if access is not None:
                body["active"] &= not access.revoked and now < access.expires_at
                body.update(scope=" ".join(access.scope), token_type="Bearer")
                body.update(iat=access.issued_at, exp=int(access.expires_at))
            elif refresh is not None:
                expired = refresh.expires_at is not None and now >= refresh.expires_at
                body["active"] &= not refresh.used and not expired
                body["scope"] = " ".join(grant.scope)
                if refresh.expires_at is not None:
                    body["exp"] = int(refresh.expires_at)
            if grant.company_id is not None and "introspection" in self.company_echo:
                body["company_id"] = grant.company_id
            return body if body["active"] else {"active": False}

    def _find(self, token: str) -> tuple[Refresh | None, Access | None]:
        key = digest(token)
        return self._refresh.get(key), self._access.get(key)

    def expire_access_tokens(self) -> None:
        with self.lock:
            now = self.clock()
            for access in self._access.values():
                access.expires_at = min(access.expires_at, now)

    def grants(self) -> list[MockGrant]:
        with self.lock:
            return [
                MockGrant(
                    g.grant_id,
                    g.client_id,
                    g.user_id,
                    g.scope,
                    g.company_id,
                    g.revoked,
                    g.rotations,
                )
                for g in self._grants.values()
            ]

    def is_revoked(self, token: str) -> bool:
        with self.lock:
            refresh, access = self._find(token)
            record = refresh or access
            if record is None:
                raise KeyError("this token was not issued by this mock")
            return self._grants[record.grant_id].revoked or bool(access and access.revoked)
