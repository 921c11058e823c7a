"""``request.user`` and ``request.auth`` for Starlette's authentication machinery."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.requests import HTTPConnection

from .._bounded import remember
from ._cookies import SessionData
from ._state import auth_state

__all__ = ["WhopAuthBackend", "WhopUser", "credentials", "user_of"]


@dataclass(frozen=True)
class WhopUser(BaseUser):
    """The signed-in Whop user, as ``request.user``.

    ``id`` is the provider's ``sub`` (``user_...``); ``tenant`` the tenant the
    grant is stored under. Profile fields come from the id_token or userinfo at
    sign-in and may be ``None``.

    >>> user = WhopUser(id="user_1", tenant="default", name="Ada")
    >>> user.is_authenticated, user.display_name
    (True, 'Ada')
    """

    id: str
    tenant: str
    name: str | None = None
    email: str | None = None
    picture: str | None = None
    scopes: tuple[str, ...] = ()
    login_at: int = 0
    session_id: str = field(default="", repr=False)

    @classmethod
    def from_session(cls, session: SessionData) -> WhopUser:
        return cls(
            id=session.user,
            tenant=session.tenant,
            name=session.name,
            email=session.email,
            picture=session.picture,
            scopes=session.scopes,
            login_at=session.login_at,
            session_id=session.session_id,
        )

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.id

    @property
    def identity(self) -> str:
        return self.id


def credentials(session: SessionData | None) -> tuple[AuthCredentials, BaseUser]:
    """``(request.auth, request.user)`` for ``session``, as Starlette's middleware sets them.

    ``request.auth.scopes`` holds ``"authenticated"`` plus the scopes the provider
    granted, so ``@requires("email")`` guards an endpoint; signed out, the user is
    Starlette's ``UnauthenticatedUser`` and the scopes are empty.
    """
    if session is None:
        return AuthCredentials(), UnauthenticatedUser()
    known = _users.get(session.session_id)
    if known is None or known[0] is not session:
        known = _signed_in(session)
    return AuthCredentials(known[2]), known[1]  # a list of its own: endpoints may edit it


def user_of(session: SessionData) -> WhopUser:
    """The ``WhopUser`` of ``session`` (``WhopUser.from_session``, remembered)."""
    known = _users.get(session.session_id)
    if known is None or known[0] is not session:
        known = _signed_in(session)
    return known[1]


#: How many sessions' users are remembered; the oldest goes first.
USERS_KEPT = 4096

# session id -> (the session, its user, the credentials' scopes); insertion order = age
# (an entry replaced for another session with the same id keeps its place).
_users: dict[str, tuple[SessionData, WhopUser, tuple[str, ...]]] = {}
_adding = threading.Lock()  # plain endpoints run in threads; a hit takes no lock


def _signed_in(session: SessionData) -> tuple[SessionData, WhopUser, tuple[str, ...]]:
    """The user and the credentials' scopes of ``session``, built once per session.

    The middleware asks on every request, with the very ``SessionData`` the cookie
    codec remembered for that cookie, so ``credentials`` and ``user_of`` find it by
    identity before they call this: hashing the frozen dataclass (all eight fields,
    every request) cost more than the lookup. A ``WhopUser`` is immutable, so one
    instance serves every request of a session; a session that differs in anything
    (the same id included) gets a user of its own.
    """
    known = _users.get(session.session_id)
    if known is not None and known[0] == session:
        made = (session, known[1], known[2])  # an equal copy: found by identity from now
    else:
        made = (session, WhopUser.from_session(session), ("authenticated", *session.scopes))
    with _adding:
        remember(_users, session.session_id, made, limit=USERS_KEPT)
    return made


class WhopAuthBackend(AuthenticationBackend):
    """Authenticates from the session the whop_oauth middleware read.

    ``WhopAuth.middleware`` sets ``request.user`` and ``request.auth`` itself (the
    same values, see ``credentials``); this backend is for apps that stack
    Starlette's ``AuthenticationMiddleware`` inside it, which must run after it.
    """

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        session = auth_state(conn).session
        if session is None:
            return None
        return credentials(session)
