"""``request.user`` and ``request.auth`` for Starlette's authentication machinery."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.requests import HTTPConnection

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
    user, scopes = _signed_in(session)
    return AuthCredentials(scopes), user  # a list of its own: endpoints may edit it


def user_of(session: SessionData) -> WhopUser:
    """The ``WhopUser`` of ``session`` (``WhopUser.from_session``, remembered)."""
    return _signed_in(session)[0]


#: How many sessions' users are remembered; the least recently used goes first.
USERS_KEPT = 4096


@lru_cache(maxsize=USERS_KEPT)
def _signed_in(session: SessionData) -> tuple[WhopUser, tuple[str, ...]]:
    """The user and the credentials' scopes of ``session``, built once per session.

    The middleware asks on every request. A ``WhopUser`` is immutable and equal
    sessions make equal users, so one instance serves every request of a session;
    a session that differs in anything (the same id included) gets its own.
    """
    return WhopUser.from_session(session), ("authenticated", *session.scopes)


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
