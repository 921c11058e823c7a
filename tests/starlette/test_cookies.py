"""Cookie flags, sizes, tampering, expiry and key rotation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import HTTPConnection, cookie_parser
from starlette_support import (
    KEY_A,
    KEY_B,
    Env,
    replace_session_cookie,
    session_cookie_value,
)

from whop_oauth import ConfigurationError
from whop_oauth.starlette import SessionData
from whop_oauth.starlette._cookie_header import SessionCookieReader
from whop_oauth.starlette._cookies import CookieCodec
from whop_oauth.starlette._policy import MEMO_HEADER_BYTES, CookiePolicy
from whop_oauth.testing import MockClient


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """``{cookie name: full Set-Cookie header}`` of a response."""
    headers = response.headers.get_list("set-cookie")
    return {header.split("=", 1)[0]: header for header in headers}


def attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


async def test_the_flow_cookie_is_http_only_lax_short_lived_and_named_after_the_state(
    env: Env, browser: httpx.AsyncClient
) -> None:
    login = await browser.get("/auth/login")
    state = httpx.URL(login.headers["location"]).params["state"]

    (name, header), = set_cookies(login).items()

    assert name == f"whop_flow_{state[:16]}"
    assert "; Path=/auth;" in header  # sent to login and callback only
    assert "; Max-Age=600;" in header
    assert {"httponly", "samesite", "path", "max-age"} == attributes(header)
    assert "SameSite=Lax" in header
    assert len(header) < 4096


async def test_a_browser_keeps_at_most_five_sign_ins_in_progress(
    env: Env, browser: httpx.AsyncClient
) -> None:
    logins = [await browser.get("/auth/login") for _ in range(7)]

    flows = [name for name in browser.cookies if name.startswith("whop_flow_")]
    assert len(flows) == 5
    callback = await browser.get(await env.authorize(logins[-1]))
    assert callback.status_code == 303


async def test_the_session_cookie_is_http_only_lax_and_not_secure_on_plain_http(
    env: Env, browser: httpx.AsyncClient
) -> None:
    callback = await env.sign_in(browser)
    cookies = set_cookies(callback)
    header = cookies["whop_session"]

    assert "; Path=/;" in header
    assert "SameSite=Lax" in header
    assert {"httponly", "samesite", "path", "max-age"} == attributes(header)
    assert len(header) < 4096
    assert "Max-Age=0" in next(v for k, v in cookies.items() if k.startswith("whop_flow_"))


async def test_https_sites_get_host_prefixed_cookies_at_the_root_without_a_domain(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory(redirect_uri="https://app.test/auth/callback", client_id="app_web")
    env.mock.add_client(MockClient("app_web", redirect_uris=["https://app.test/auth/callback"]))
    async with env.browser("https://app.test") as browser:
        login = await browser.get("/auth/login")
        flow = set_cookies(login)
        callback = await browser.get(await env.authorize(login))
        session = set_cookies(callback)["__Host-whop_session"]
        page = (await browser.get("/")).json()

    (flow_name, flow_header), = flow.items()
    deleted = set_cookies(callback)[flow_name]
    # __Host-: a sibling subdomain cannot plant either cookie (RFC 6265bis §4.1.3.2), and a
    # browser only accepts the deletion with the same Secure, Path=/ and no Domain.
    assert flow_name.startswith("__Host-whop_flow_")
    for header in (flow_header, session, deleted):
        assert "secure" in attributes(header)
        assert "domain" not in attributes(header)
        assert "; Path=/;" in header
    assert "Max-Age=0" in deleted
    assert page["signed_in"] is True


async def test_https_flow_cookies_stay_at_the_root_when_the_app_is_mounted_under_a_prefix(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory(redirect_uri="https://app.test/sub/auth/callback", client_id="app_web")
    env.mock.add_client(MockClient("app_web", redirect_uris=["https://app.test/sub/auth/callback"]))
    transport = httpx.ASGITransport(app=env.app, root_path="/sub")
    async with httpx.AsyncClient(transport=transport, base_url="https://app.test") as browser:
        login = await browser.get("/sub/auth/login")

    (header,) = set_cookies(login).values()
    assert "; Path=/;" in header  # a __Host- cookie with any other Path is refused


async def test_a_tampered_session_cookie_means_signed_out_and_is_deleted(
    env: Env, browser: httpx.AsyncClient
) -> None:
    await env.sign_in(browser)
    value = session_cookie_value(browser)
    replace_session_cookie(browser, value[:-3] + ("xyz" if value[-3:] != "xyz" else "abc"))

    response = await browser.get("/")

    assert response.status_code == 200
    assert response.json()["signed_in"] is False
    assert "Max-Age=0" in set_cookies(response)["whop_session"]


async def test_a_session_cookie_in_a_later_cookie_header_still_signs_the_request_in(
    env: Env, browser: httpx.AsyncClient
) -> None:
    # An HTTP/2 client may send each cookie in a Cookie field of its own.
    await env.sign_in(browser)
    value = session_cookie_value(browser)
    async with env.browser() as split:
        response = await split.get(
            "/", headers=[("Cookie", "theme=dark"), ("Cookie", f"whop_session={value}")]
        )

    assert response.json()["signed_in"] is True
    assert "set-cookie" not in response.headers


async def test_the_callback_finds_its_flow_cookie_in_a_later_cookie_header(
    env: Env, browser: httpx.AsyncClient
) -> None:
    login = await browser.get("/auth/login")
    ((name, value),) = browser.cookies.items()
    callback_url = await env.authorize(login)
    async with env.browser() as split:
        callback = await split.get(
            callback_url, headers=[("Cookie", "theme=dark"), ("Cookie", f"{name}={value}")]
        )

    assert callback.status_code == 303
    assert "whop_session" in set_cookies(callback)


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "a.b.c", "e30.AAAA.BBBB", "\u00e9\u00e9", "." * 5000],
    ids=["empty", "garbage", "dots", "fake-signature", "non-ascii", "huge"],
)
async def test_an_undecodable_session_cookie_never_causes_a_500(
    env: Env, value: str
) -> None:
    async with env.browser() as browser:
        raw = f"whop_session={value}".encode()
        response = await browser.get("/", headers={"Cookie": raw})

    assert response.status_code == 200
    assert response.json()["signed_in"] is False


async def test_a_session_older_than_its_max_age_is_signed_out(
    env_factory: Callable[..., Env],
) -> None:
    env = env_factory(session_max_age=3600)
    stale = SessionData("sid", "user_mock1", "default", int(time.time()) - 3601)
    async with env.browser() as browser:
        replace_session_cookie(browser, env.whop._site.cookies.codec.dumps_session(stale))
        response = await browser.get("/")

    assert response.json()["signed_in"] is False


async def test_rotating_keys_keeps_users_signed_in_and_re_signs_with_the_new_key(
    env_factory: Callable[..., Env],
) -> None:
    old = env_factory(secret_keys=[KEY_A])
    async with old.browser() as browser:
        await old.sign_in(browser)
        cookie_under_a = session_cookie_value(browser)

    rotated = env_factory(secret_keys=[KEY_B, KEY_A], store=old.store)
    async with rotated.browser() as browser:
        replace_session_cookie(browser, cookie_under_a)
        response = await browser.get("/")
        assert response.json()["signed_in"] is True
        assert "whop_session" in set_cookies(response)  # re-signed with KEY_B
        cookie_under_b = session_cookie_value(browser)
        assert (await browser.get("/")).headers.get("set-cookie") is None

    only_b = env_factory(secret_keys=[KEY_B], store=old.store)
    only_a = env_factory(secret_keys=[KEY_A], store=old.store)
    for env, cookie, signed_in in [
        (only_b, cookie_under_b, True),
        (only_b, cookie_under_a, False),
        (only_a, cookie_under_b, False),
    ]:
        async with env.browser() as browser:
            replace_session_cookie(browser, cookie)
            assert (await browser.get("/")).json()["signed_in"] is signed_in


def test_the_first_key_signs_and_every_key_verifies() -> None:
    session = SessionData.new("user_1", "default")
    signed_by_b = CookieCodec([KEY_B, KEY_A]).dumps_session(session)

    assert CookieCodec([KEY_B]).loads_session(signed_by_b, max_age=60) == (session, True)
    assert CookieCodec([KEY_A, KEY_B]).loads_session(signed_by_b, max_age=60) == (session, False)
    assert CookieCodec([KEY_A]).loads_session(signed_by_b, max_age=60) == (None, False)


def test_a_flow_cookie_is_never_accepted_as_a_session_or_the_reverse() -> None:
    codec = CookieCodec([KEY_A])
    session = SessionData.new("user_1", "default")
    as_flow = codec.dumps_flow(session.to_payload())

    assert codec.loads_session(as_flow, max_age=60) == (None, False)
    assert codec.loads_flow(codec.dumps_session(session), max_age=60) is None


def test_an_oversized_profile_is_trimmed_to_fit_a_cookie_but_never_its_identity() -> None:
    scopes = tuple(f"scope:{i:03}" for i in range(200))
    huge = SessionData(
        "s" * 22, "u" * 255, "t" * 255, int(time.time()), scopes,
        name="\u4e2d" * 500, email="e" * 500, picture="https://x/" + "A" * 1500,
    )
    value = CookieCodec([KEY_A]).dumps_session(huge)
    read, _ = CookieCodec([KEY_A]).loads_session(value, max_age=60)

    assert len(value) < 3900
    assert read is not None
    assert (read.user, read.tenant) == (huge.user, huge.tenant)
    assert read.scopes == scopes[: len(read.scopes)]  # whole scopes, the first ones
    assert 50 < len(read.scopes) < 200
    assert read.email is None


def test_an_identity_too_long_for_a_cookie_is_refused_not_shortened() -> None:
    with pytest.raises(ConfigurationError):
        CookieCodec([KEY_A]).dumps_session(SessionData.new("u" * 256, "default"))


@pytest.mark.parametrize(
    "keys", [[], ["short"], "a-single-string-key-that-is-long-enough-to-sign"]
)
def test_unusable_secret_keys_are_refused(keys: list[str] | str) -> None:
    with pytest.raises(ConfigurationError):
        CookieCodec(keys)


def test_a_verified_session_read_again_past_its_max_age_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = CookieCodec([KEY_A])
    value = codec.dumps_session(SessionData.new("user_1", "default"))
    session, _ = codec.loads_session(value, max_age=60)
    assert session is not None
    assert session.user == "user_1"

    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)

    assert codec.loads_session(value, max_age=60) == (None, False)


def test_a_tampered_session_value_is_refused_every_time_it_is_presented() -> None:
    codec = CookieCodec([KEY_A])
    value = codec.dumps_session(SessionData.new("user_1", "default"))
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    for _ in range(3):
        assert codec.loads_session(tampered, max_age=60) == (None, False)
    assert codec.loads_session(value, max_age=60)[0] is not None


def test_the_verified_session_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("whop_oauth.starlette._cookies._VERIFIED_CACHE_SIZE", 3)
    codec = CookieCodec([KEY_A])
    values = [codec.dumps_session(SessionData.new(f"user_{i}", "default")) for i in range(5)]
    for value in values:
        assert codec.loads_session(value, max_age=60)[0] is not None
    assert len(codec._verified) == 3
    assert all(codec.loads_session(v, max_age=60)[0] is not None for v in values)


PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
# Cookie headers as browsers and attackers write them: names (ours among them), values
# of any Latin-1 text, quotes and escapes included, and separators with stray
# whitespace, empty chunks and duplicate names.
SESSION_COOKIE = "whop_session"
COOKIE_NAME = st.sampled_from(
    [SESSION_COOKIE, "whop_flow_x", "theme", "", " whop_session", "whop_session_old"]
)
LATIN_1 = st.text(st.characters(max_codepoint=255, blacklist_characters=";"), max_size=12)
COOKIE_CHUNK = st.one_of(
    st.builds(lambda name, value: f"{name}={value}", COOKIE_NAME, LATIN_1), LATIN_1
)
RAW_COOKIE_HEADERS = st.lists(COOKIE_CHUNK, max_size=6).map(";".join)


@PROPERTY
@given(RAW_COOKIE_HEADERS)
def test_the_session_cookie_is_read_from_a_header_as_starlette_parses_it(header: str) -> None:
    raw = header.encode("latin-1")
    expected = HTTPConnection({"type": "http", "headers": [(b"cookie", raw)]}).cookies

    read = SessionCookieReader(SESSION_COOKIE)
    assert read([(b"cookie", raw)]) == expected.get(SESSION_COOKIE)


@PROPERTY
@given(RAW_COOKIE_HEADERS, RAW_COOKIE_HEADERS)
def test_a_cookie_split_over_two_headers_is_read_as_starlette_reads_it(
    first: str, second: str
) -> None:
    # HTTP/2 lets a client send one Cookie field per cookie; the last value still wins.
    split = [(b"cookie", first.encode("latin-1")), (b"cookie", second.encode("latin-1"))]
    expected = HTTPConnection({"type": "http", "headers": split}).cookies

    assert SessionCookieReader(SESSION_COOKIE)(split) == expected.get(SESSION_COOKIE)


@PROPERTY
@given(st.lists(RAW_COOKIE_HEADERS, min_size=1, max_size=3))
def test_the_reader_answers_as_starlette_in_any_order_of_headers(
    headers: list[str],
) -> None:
    split = [(b"cookie", header.encode("latin-1")) for header in headers]
    expected = HTTPConnection({"type": "http", "headers": split}).cookies.get(SESSION_COOKIE)
    read = SessionCookieReader(SESSION_COOKIE)

    assert read(split) == expected
    assert read(split) == expected  # and again
    assert read(list(reversed(split))) == HTTPConnection(
        {"type": "http", "headers": split[::-1]}
    ).cookies.get(SESSION_COOKIE)  # the same headers remembered, in another order


def _policy() -> CookiePolicy:
    return CookiePolicy([KEY_A], secure=False, flow_paths=("/auth/login", "/auth/callback"))


def _header(policy: CookiePolicy, session: SessionData, pad: int = 0) -> bytes:
    value = policy.codec.dumps_session(session)
    return f"pad={'x' * pad}; {policy.session_cookie}={value}".encode()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    parsed: list[bytes] = []

    def counting_parser(text: str) -> dict[str, str]:
        parsed.append(text.encode("latin-1"))
        return cookie_parser(text)

    monkeypatch.setattr("whop_oauth.starlette._cookie_header.cookie_parser", counting_parser)
    return parsed


def test_a_header_seen_before_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = _counting(monkeypatch)
    policy = _policy()
    session = SessionData.new("user_1", "default")
    usual = _header(policy, session)
    longest_kept = _header(policy, session, pad=MEMO_HEADER_BYTES - len(usual))
    assert len(longest_kept) == MEMO_HEADER_BYTES
    for _ in range(3):
        assert policy.read_session({"headers": [(b"cookie", usual)]}) == (session, "keep")
        assert policy.read_session({"headers": [(b"cookie", longest_kept)]}) == (session, "keep")

    assert parsed == [usual, longest_kept]  # each header once


def test_read_session_remembers_a_bounded_number_of_short_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed = _counting(monkeypatch)
    monkeypatch.setattr("whop_oauth.starlette._policy.MEMO_SIZE", 3)
    policy = _policy()
    sessions = [SessionData.new(f"user_{i}", "default") for i in range(5)]
    headers = [_header(policy, session) for session in sessions]
    for header in headers:
        policy.read_session({"headers": [(b"cookie", header)]})
    parsed.clear()

    for header, session in zip(headers[2:], sessions[2:], strict=True):
        assert policy.read_session({"headers": [(b"cookie", header)]}) == (session, "keep")
    assert parsed == []  # the newest three are remembered: the oldest went first
    assert len(policy._known) == 3
    long = _header(policy, sessions[0], pad=MEMO_HEADER_BYTES)
    assert policy.read_session({"headers": [(b"cookie", long)]}) == (sessions[0], "keep")
    assert policy.read_session({"headers": [(b"cookie", long)]}) == (sessions[0], "keep")
    assert parsed == [long, long]  # read, not kept
    assert policy.read_session({"headers": [(b"cookie", headers[0])]})[0] == sessions[0]
    assert parsed == [long, long, headers[0]]  # forgotten: read again


def test_several_cookie_headers_are_read_every_time_as_starlette_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed = _counting(monkeypatch)
    policy = _policy()
    mine, other = SessionData.new("user_1", "default"), SessionData.new("user_2", "default")
    first, second = _header(policy, mine), _header(policy, other)
    assert policy.read_session({"headers": [(b"cookie", first)]})[0] == mine  # remembered

    for _ in range(2):  # the last header holding the cookie wins, each time
        split = {"headers": [(b"cookie", first), (b"cookie", second)]}
        assert policy.read_session(split) == (other, "keep")
    assert parsed == [first, first, second, first, second]


def test_an_unusable_session_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = _counting(monkeypatch)
    policy = _policy()
    header = _header(policy, SessionData.new("user_1", "default"))
    forged = header[:-2] + (b"AA" if header[-2:] != b"AA" else b"BB")
    for _ in range(2):
        assert policy.read_session({"headers": [(b"cookie", forged)]}) == (None, "clear")
    assert parsed == [forged, forged]  # refused every time, never served from memory
    assert policy._known == {}


def test_a_header_signed_with_an_old_key_is_re_set_on_every_request_until_replaced() -> None:
    old = CookiePolicy([KEY_A], secure=False, flow_paths=("/auth/login", "/auth/callback"))
    new = CookiePolicy([KEY_B, KEY_A], secure=False, flow_paths=("/auth/login", "/auth/callback"))
    session = SessionData.new("user_1", "default")
    scope = {"headers": [(b"cookie", _header(old, session))]}

    assert new.read_session(scope) == (session, "set")
    assert new.read_session(scope) == (session, "set")  # remembered as it was read


def test_only_cookie_headers_are_read_for_the_session() -> None:
    read = SessionCookieReader(SESSION_COOKIE)
    headers = [
        (b"referer", b"https://app.test/?whop_session=forged"),
        (b"x-whop-session", b"whop_session=forged"),
        (b"cookie", b"theme=dark"),
    ]

    assert read(headers) is None
    assert read([*headers, (b"cookie", b"whop_session=real")]) == "real"
    # A later Cookie header that only mentions the name keeps the value found before it.
    later = [(b"cookie", b"whop_session=real"), (b"cookie", b"whop_session_old=stale")]
    assert read(later) == "real"
    assert read(later) == "real"  # remembered or not


def test_a_remembered_header_serves_until_the_last_second_of_its_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed = _counting(monkeypatch)
    policy = _policy()
    policy.session_max_age = 60
    session = SessionData.new("user_1", "default")
    scope = {"headers": [(b"cookie", _header(policy, session))]}
    assert policy.read_session(scope) == (session, "keep")

    monkeypatch.setattr(time, "time", lambda: float(session.login_at + 60))  # the last second

    assert policy.read_session(scope) == (session, "keep")
    assert len(parsed) == 1  # from memory, as the codec would still accept it


def test_a_shorter_session_lifetime_applies_to_remembered_headers_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = _policy()
    session = SessionData.new("user_1", "default")
    scope = {"headers": [(b"cookie", _header(policy, session))]}
    assert policy.read_session(scope) == (session, "keep")  # remembered
    monkeypatch.setattr(time, "time", lambda: float(session.login_at + 120))

    policy.session_max_age = 60

    assert policy.read_session(scope) == (None, "clear")
    assert policy._known == {}  # the too-old entry went


def test_a_too_old_header_dropped_by_another_thread_meanwhile_is_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class DroppedMeanwhile(dict[bytes, Any]):
        """Another thread's request with the same header drops the entry right after
        this one found it."""

        def get(self, key: bytes, default: Any = None) -> Any:
            found = super().get(key, default)
            self.pop(key, None)
            return found

    policy = _policy()
    session = SessionData.new("user_1", "default")
    scope = {"headers": [(b"cookie", _header(policy, session))]}
    assert policy.read_session(scope) == (session, "keep")  # remembered
    policy._known = DroppedMeanwhile(policy._known)
    monkeypatch.setattr(time, "time", lambda: float(session.login_at + policy.session_max_age + 1))

    assert policy.read_session(scope) == (None, "clear")  # not a KeyError: a 500


def test_a_remembered_header_is_still_checked_for_age_on_every_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = CookiePolicy([KEY_A], secure=False, flow_paths=("/auth/login", "/auth/callback"))
    policy.session_max_age = 60
    session = SessionData.new("user_1", "default")
    header = f"{policy.session_cookie}={policy.codec.dumps_session(session)}".encode()
    scope = {"type": "http", "headers": [(b"cookie", header)]}
    assert policy.read_session(scope) == (session, "keep")

    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)

    assert policy.read_session(scope) == (None, "clear")  # same header, now too old
