"""``request.user`` and ``request.auth`` on the signed-in request path: one ``WhopUser``
per session, remembered within a bound; credentials of their own for every request."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from starlette.authentication import UnauthenticatedUser
from threads import errors_in_threads

from whop_oauth.starlette import SessionData, _backend
from whop_oauth.starlette._backend import USERS_KEPT, credentials, user_of


def session(index: int = 0, **fields: Any) -> SessionData:
    return SessionData(f"session-{index}", f"user_{index}", "biz_1", 1_700_000_000, **fields)


PROFILE: dict[str, Any] = {
    "scopes": ("openid", "email"),
    "name": "Ada",
    "email": "ada@example.com",
    "picture": "https://cdn.example/ada.png",
}


def test_every_request_of_a_session_gets_the_same_user() -> None:
    auth, user = credentials(session(**PROFILE))
    _, again = credentials(session(**PROFILE))

    assert user is again
    assert dataclasses.astuple(user) == (
        "user_0",
        "biz_1",
        "Ada",
        "ada@example.com",
        "https://cdn.example/ada.png",
        ("openid", "email"),
        1_700_000_000,
        "session-0",
    )
    assert auth.scopes == ["authenticated", "openid", "email"]


def test_sessions_that_differ_in_anything_get_users_of_their_own() -> None:
    plain = user_of(session())

    assert user_of(session(name="Ada")) is not plain
    assert user_of(session(name="Ada")).name == "Ada"
    assert user_of(session(1)).id == "user_1"


def test_remembered_users_are_bounded() -> None:
    _backend._users.clear()  # process-wide: other tests' sessions would be older
    first = session(-1, name="oldest")  # an id none of the others has
    remembered = user_of(first)

    for index in range(USERS_KEPT):  # with the first, one more session than the bound
        user_of(session(index))

    assert len(_backend._users) == USERS_KEPT
    rebuilt = user_of(first)
    assert rebuilt is not remembered
    assert rebuilt == remembered


def test_sessions_within_the_bound_keep_their_users() -> None:
    users = [user_of(session(index)) for index in range(100)]

    # Interleaved sessions: each one is still remembered after the others were asked.
    assert all(user_of(session(index)) is users[index] for index in range(100))


def test_each_request_gets_its_own_credentials() -> None:
    one, _ = credentials(session(scopes=("email",)))
    two, _ = credentials(session(scopes=("email",)))

    one.scopes.append("admin")  # an endpoint that edits request.auth.scopes

    assert two.scopes == ["authenticated", "email"]
    assert credentials(session(scopes=("email",)))[0].scopes == ["authenticated", "email"]


def test_signed_out_requests_get_starlettes_anonymous_user() -> None:
    auth, user = credentials(None)

    assert isinstance(user, UnauthenticatedUser)
    assert auth.scopes == []


def test_a_user_is_immutable() -> None:
    user = user_of(session())

    with pytest.raises(AttributeError):
        user.id = "user_other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "change",
    [{"user": "user_other"}, {"tenant": "biz_other"}, {"scopes": ("admin",)}],
    ids=["user", "tenant", "scopes"],
)
def test_a_session_id_that_comes_back_with_another_identity_gets_its_own_user(
    change: dict[str, Any],
) -> None:
    original = session(7)
    first = user_of(original)
    other = dataclasses.replace(original, **change)

    auth, user = credentials(other)

    assert user is not first
    assert (user.id, user.tenant, user.scopes) == (other.user, other.tenant, other.scopes)
    assert auth.scopes == ["authenticated", *other.scopes]


def test_threads_asking_at_once_never_fail_and_keep_the_bound() -> None:
    # Plain endpoints and dependencies (current_user) run in worker threads.
    def ask(thread: int) -> None:
        for index in range(3000):
            user = user_of(session(thread * 10_000 + index))
            assert user.id == f"user_{thread * 10_000 + index}"

    assert errors_in_threads(ask) == []
    assert len(_backend._users) <= USERS_KEPT


def test_the_session_the_cookie_codec_remembered_is_found_without_building_or_comparing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remembered = session(42, **PROFILE)  # the very object the codec hands every request
    _, user = credentials(remembered)
    built: list[SessionData] = []
    original = _backend._signed_in

    def counting(session: SessionData) -> Any:
        built.append(session)
        return original(session)

    monkeypatch.setattr(_backend, "_signed_in", counting)

    assert credentials(remembered)[1] is user
    assert user_of(remembered) is user
    assert built == []  # a dict lookup and an identity check, no more
    assert user_of(session(42, **PROFILE)) is user  # an equal copy: compared, same user
    assert len(built) == 1
