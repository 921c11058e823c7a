"""``CookiePolicy`` on its own: the exact ``Set-Cookie`` values it writes for the session
and the flows (deletions included), the paths a mounted app's flow cookies take, and
which flow cookies it drops."""

from __future__ import annotations

import logging
import time

import pytest
from starlette.requests import HTTPConnection

from whop_oauth.starlette import SessionData
from whop_oauth.starlette._policy import CookiePolicy

KEY = "k" * 32
LOGIN_AT = 1_700_000_000


def policy(
    *, secure: bool, flow_paths: tuple[str, str] = ("/auth/login", "/auth/callback")
) -> CookiePolicy:
    return CookiePolicy([KEY], secure=secure, flow_paths=flow_paths)


def conn(root_path: str | None = "", cookies: dict[str, str] | None = None) -> HTTPConnection:
    header = "; ".join(f"{name}={value}" for name, value in (cookies or {}).items())
    headers = [(b"cookie", header.encode())] if header else []
    scope = {"type": "http", "headers": headers}
    if root_path is not None:
        scope["root_path"] = root_path
    return HTTPConnection(scope)


@pytest.mark.parametrize(
    ("secure", "expected"),
    [
        (
            False,
            "whop_session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
            "HttpOnly; SameSite=Lax",
        ),
        # A browser only deletes a __Host- cookie with a Set-Cookie that is Secure too.
        (
            True,
            "__Host-whop_session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
            "HttpOnly; SameSite=Lax; Secure",
        ),
    ],
)
def test_deleting_the_session_cookie_writes_an_empty_expired_cookie_with_the_same_attributes(
    secure: bool, expected: str
) -> None:
    assert policy(secure=secure).session_cookie_header(None) == expected


def test_the_session_cookie_lives_until_the_session_is_max_age_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cookies = policy(secure=True)
    cookies.session_max_age = 3600
    monkeypatch.setattr(time, "time", lambda: LOGIN_AT + 600.5)

    header = cookies.session_cookie_header(SessionData("sid-1", "user_1", "biz_1", LOGIN_AT))

    assert "; Max-Age=3000;" in header  # signed in 600 s ago: 3,000 s of the hour remain


@pytest.mark.parametrize(
    ("flow_paths", "root_path", "path"),
    [
        (("/auth/login", "/auth/callback"), "", "/auth"),
        (("/auth/login", "/auth/callback"), "/app/", "/app/auth"),  # mounted under /app
        (("/login", "/callback"), "", "/"),  # login and callback share only the root
        (("/login", "/callback"), "/app", "/app"),
        (("/auth/login", "/auth/callback"), "/MAX/", "/MAX/auth"),  # only slashes go
        (("/auth/login", "/auth/callback"), None, "/auth"),  # a server without root_path
    ],
)
def test_http_flow_cookies_live_under_the_path_login_and_callback_share(
    flow_paths: tuple[str, str], root_path: str | None, path: str
) -> None:
    cookies = policy(secure=False, flow_paths=flow_paths)

    header = cookies.flow_cookie_header(conn(root_path), "whop_flow_abcdefgh", "value")

    assert header == f"whop_flow_abcdefgh=value; Path={path}; Max-Age=600; HttpOnly; SameSite=Lax"


def test_https_flow_cookies_stay_at_the_root_and_are_deleted_there() -> None:
    cookies = policy(secure=True)
    name = "__Host-whop_flow_abcdefgh"

    deleted = cookies.flow_cookie_header(conn("/app"), name, None)

    assert deleted == (
        f"{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; "
        "SameSite=Lax; Secure"
    )


def test_expired_and_forged_flow_cookies_are_dropped_and_the_oldest_live_ones_go_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cookies = policy(secure=False)
    signed: dict[str, str] = {}
    for age, name in [(700, "expired"), (500, "a"), (400, "b"), (300, "c"), (200, "d"),
                      (100, "e")]:  # fmt: skip
        monkeypatch.setattr(time, "time", lambda age=age: LOGIN_AT - age)
        signed[f"whop_flow_{name}"] = cookies.codec.dumps_flow({"state": name})
    monkeypatch.setattr(time, "time", lambda: float(LOGIN_AT))
    signed["whop_flow_forged"] = signed["whop_flow_a"][:-2] + "xx"
    signed["theme"] = "dark"  # not a flow cookie: never touched

    stale = cookies.stale_flow_cookies(conn(cookies=signed))

    # Five flows at most with the new one: of the live a..e, the oldest makes way.
    assert stale == ["whop_flow_expired", "whop_flow_forged", "whop_flow_a"]


def test_an_unusable_session_cookie_is_logged_without_its_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cookies = policy(secure=False)
    scope = {"headers": [(b"cookie", b"whop_session=forged-value")]}

    with caplog.at_level(logging.INFO, logger="whop_oauth.starlette"):
        assert cookies.read_session(scope) == (None, "clear")

    assert [r.getMessage() for r in caplog.records] == [
        "ignoring an invalid or expired session cookie"
    ]


@pytest.mark.parametrize(
    "headers",
    [[], [(b"host", b"app.test")], [(b"cookie", b"theme=dark")]],
    ids=["no headers", "no cookie header", "no session cookie"],
)
def test_a_request_without_a_session_cookie_is_signed_out_and_its_cookies_left_alone(
    headers: list[tuple[bytes, bytes]],
) -> None:
    cookies = policy(secure=False)

    assert cookies.read_session({"headers": headers}) == (None, "keep")
    assert cookies.read_session({"headers": headers}) == (None, "keep")  # and again
