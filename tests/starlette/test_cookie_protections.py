"""The cookie codec's protections, each by its observable effect: what a session payload
must hold to be read, the bounds on what a cookie carries, which signatures are accepted
(salt, digest, key, age), how a flow cookie is named, and the exact Set-Cookie header."""

from __future__ import annotations

import hashlib
import random
import string
import time
from dataclasses import replace
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.datastructures import Secret

from whop_oauth import ConfigurationError
from whop_oauth.starlette import SessionData, _cookies
from whop_oauth.starlette._cookies import CookieCodec, cookie_header, flow_cookie_suffix

KEY_A = "a" * 32
KEY_B = "b" * 40


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sid": "sid_1", "sub": "user_1", "ten": "biz_1", "iat": 1700000000}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def sign(value: Any, *, salt: str, key: str = KEY_A, digest: Any = hashlib.sha256) -> str:
    serializer = URLSafeTimedSerializer(key, salt=salt, signer_kwargs={"digest_method": digest})
    text: str = serializer.dumps(value)
    return text


# --- the session payload -----------------------------------------------------------------


def test_a_full_session_round_trips_through_its_payload() -> None:
    session = SessionData(
        "sid_1",
        "user_1",
        "biz_1",
        1700000000,
        ("read", "write"),
        name="Ada",
        email="ada@example.com",
        picture="https://x/p.png",
    )
    assert session.to_payload() == {
        "sid": "sid_1",
        "sub": "user_1",
        "ten": "biz_1",
        "iat": 1700000000,
        "scp": "read write",
        "n": "Ada",
        "e": "ada@example.com",
        "p": "https://x/p.png",
    }
    assert SessionData.from_payload(session.to_payload()) == session


def test_a_session_without_a_profile_carries_none() -> None:
    session = SessionData("sid_1", "user_1", "biz_1", 5, name="", email=None)
    assert session.to_payload() == {
        "sid": "sid_1",
        "sub": "user_1",
        "ten": "biz_1",
        "iat": 5,
        "scp": "",
    }
    read = SessionData.from_payload(session.to_payload())
    assert read == SessionData("sid_1", "user_1", "biz_1", 5)
    assert read is not None
    assert (read.scopes, read.name, read.email, read.picture) == ((), None, None, None)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "text",
        ["sid_1", "user_1"],
        42,
        payload(sid=...),
        payload(sub=...),
        payload(ten=...),
        payload(iat=...),
        payload(sid=""),
        payload(sub=""),
        payload(ten=""),
        payload(sid=1),
        payload(sub=None),
        payload(ten=["biz_1"]),
        payload(iat="1700000000"),
        payload(iat=1700000000.0),
        payload(iat=True),
        payload(scp=["read"]),
        payload(n=1),
        payload(e=None),
        payload(p=b"x"),
    ],
)
def test_a_payload_missing_or_mistyping_any_field_is_no_session(bad: Any) -> None:
    assert SessionData.from_payload(bad) is None


def test_the_session_id_stays_out_of_the_repr_and_a_new_one_is_random() -> None:
    first, second = SessionData.new("user_1", "biz_1"), SessionData.new("user_1", "biz_1")
    assert first.session_id != second.session_id
    assert len(first.session_id) >= 21  # 16 random bytes
    assert first.session_id not in repr(first)
    assert abs(first.login_at - time.time()) <= 1
    assert type(first.login_at) is int
    with_profile = SessionData.new("user_1", "biz_1", name="Ada", scopes=("read",))
    assert (with_profile.name, with_profile.scopes, with_profile.tenant) == (
        "Ada",
        ("read",),
        "biz_1",
    )


# --- bounds ----------------------------------------------------------------------------


def read_back(session: SessionData) -> SessionData:
    codec = CookieCodec([KEY_A])
    read, _ = codec.loads_session(codec.dumps_session(session), max_age=60)
    assert read is not None
    return read


def test_a_long_name_is_cut_and_a_long_email_or_picture_is_dropped_not_cut() -> None:
    now = int(time.time())
    session = SessionData(
        "sid_1",
        "u",
        "t",
        now,
        name="N" * 201,
        email="e" * 254,
        picture="https://x/" + "p" * 2038,  # exactly 2048
    )
    read = read_back(session)
    assert read.name == "N" * 200
    assert read.email == "e" * 254
    assert read.picture == session.picture
    longer = SessionData(
        "sid_1", "u", "t", now, name="N" * 200, email="e" * 255, picture=f"{session.picture}q"
    )
    read = read_back(longer)
    assert read.name == "N" * 200
    assert (read.email, read.picture) == (None, None)


def test_scopes_are_kept_whole_up_to_1024_characters() -> None:
    scopes = tuple(f"s{i:03}" for i in range(300))  # 4 characters each, 5 with the space
    read = read_back(SessionData("sid_1", "u", "t", int(time.time()), scopes))
    assert read.scopes == scopes[:205]  # 205 * 5 - 1 = 1024 characters
    exact = ("x" * 1024,)
    assert read_back(SessionData("sid_1", "u", "t", int(time.time()), exact)).scopes == exact
    over = ("x" * 1025, "y")
    assert read_back(SessionData("sid_1", "u", "t", int(time.time()), over)).scopes == ()


def noise(length: int, seed: int) -> str:
    """Text that compresses badly, so its signed cookie grows with it."""
    pick = random.Random(seed)
    return "".join(pick.choice(string.ascii_letters + string.digits) for _ in range(length))


def test_a_profile_too_big_for_the_cookie_loses_the_picture_first_then_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = int(time.time())
    full = SessionData(
        "sid_1",
        noise(255, 1),
        noise(255, 2),
        now,
        ("read",),
        name=noise(200, 3),
        email=noise(254, 4),
        picture=noise(2000, 5),
    )
    codec = CookieCodec([KEY_A])
    no_picture = len(codec.dumps_session(replace(full, picture=None)))
    bare = len(codec.dumps_session(replace(full, picture=None, name=None, email=None)))
    assert len(codec.dumps_session(full)) > no_picture > bare
    monkeypatch.setattr(_cookies, "_MAX_COOKIE_VALUE", no_picture)
    assert read_back(full) == replace(full, picture=None)
    monkeypatch.setattr(_cookies, "_MAX_COOKIE_VALUE", no_picture - 1)
    assert read_back(full) == replace(full, picture=None, name=None, email=None)
    monkeypatch.setattr(_cookies, "_MAX_COOKIE_VALUE", bare)
    assert read_back(full) == replace(full, picture=None, name=None, email=None)
    monkeypatch.setattr(_cookies, "_MAX_COOKIE_VALUE", bare - 1)
    with pytest.raises(ConfigurationError) as caught:
        codec.dumps_session(full)
    assert str(caught.value) == "the session does not fit in a cookie"


def test_a_flow_is_refused_only_beyond_3800_characters() -> None:
    codec = CookieCodec([KEY_A])
    text = noise(4000, 6)
    seen = set()
    for length in range(3650, 3720):
        data = {"state": text[:length]}
        expected = len(sign(data, salt="whop_oauth.flow"))
        seen.add(expected)
        if expected > 3800:
            with pytest.raises(ConfigurationError) as caught:
                codec.dumps_flow(data)
            assert str(caught.value) == "the sign-in flow does not fit in a cookie"
        else:
            assert len(codec.dumps_flow(data)) == expected
    assert 3800 in seen  # the boundary itself was tried
    assert max(seen) > 3800


@pytest.mark.parametrize(("user", "tenant"), [("u" * 256, "t"), ("u", "t" * 256)])
def test_an_identity_over_255_characters_is_refused(user: str, tenant: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CookieCodec([KEY_A]).dumps_session(SessionData.new(user, tenant))
    assert str(caught.value) == "user ids and tenants longer than 255 characters"
    assert read_back(SessionData.new("u" * 255, "t" * 255)).user == "u" * 255


# --- signatures ------------------------------------------------------------------------


def test_a_session_is_signed_with_sha256_under_its_own_salt() -> None:
    codec = CookieCodec([KEY_A])
    data = payload(iat=int(time.time()))
    assert codec.loads_session(sign(data, salt="whop_oauth.session"), max_age=60)[0] is not None
    for value in (
        sign(data, salt="whop_oauth.session", digest=hashlib.sha1),
        sign(data, salt="whop_oauth.flow"),
        sign(data, salt="itsdangerous"),
        sign(data, salt="whop_oauth.session", key=KEY_B),
    ):
        assert codec.loads_session(value, max_age=60) == (None, False)


def test_a_flow_is_signed_with_sha256_under_its_own_salt() -> None:
    codec = CookieCodec([KEY_A])
    data = {"state": "abc"}
    assert codec.loads_flow(sign(data, salt="whop_oauth.flow"), max_age=60) == data
    assert (
        codec.loads_flow(sign(data, salt="whop_oauth.flow", digest=hashlib.sha1), max_age=60)
        is None
    )
    assert codec.loads_flow(sign(data, salt="whop_oauth.session"), max_age=60) is None
    assert codec.loads_flow(sign(["state"], salt="whop_oauth.flow"), max_age=60) is None


def test_every_key_verifies_a_flow_and_the_first_signs_it() -> None:
    old, new = CookieCodec([KEY_A]), CookieCodec([KEY_B, KEY_A])
    assert new.loads_flow(old.dumps_flow({"state": "x"}), max_age=60) == {"state": "x"}
    assert old.loads_flow(new.dumps_flow({"state": "x"}), max_age=60) is None
    assert CookieCodec([KEY_B]).loads_flow(new.dumps_flow({"state": "x"}), max_age=60) == {
        "state": "x"
    }


def test_a_flow_older_than_its_max_age_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = CookieCodec([KEY_A])
    value = codec.dumps_flow({"state": "x"})
    signed = codec.flow_timestamp(value, max_age=60)
    assert signed is not None
    assert abs(signed - time.time()) <= 1
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert codec.loads_flow(value, max_age=60) is None
    assert codec.flow_timestamp(value, max_age=60) is None
    assert codec.flow_timestamp(value, max_age=120) == signed
    assert codec.flow_timestamp("garbage", max_age=60) is None


def test_a_session_signed_with_an_old_key_is_read_as_not_current_every_time() -> None:
    session = SessionData.new("user_1", "biz_1")
    old_value = CookieCodec([KEY_A]).dumps_session(session)
    codec = CookieCodec([KEY_B, KEY_A])
    assert codec.loads_session(old_value, max_age=60) == (session, False)
    assert codec.loads_session(old_value, max_age=60) == (session, False)  # from the cache
    current = codec.dumps_session(session)
    assert codec.loads_session(current, max_age=60) == (session, True)
    assert codec.loads_session(current, max_age=60) == (session, True)


def test_a_session_older_than_max_age_since_sign_in_is_refused_even_freshly_signed() -> None:
    codec = CookieCodec([KEY_A])
    signed_in = int(time.time()) - 100
    value = codec.dumps_session(SessionData("sid_1", "u", "t", signed_in))
    assert codec.loads_session(value, max_age=90) == (None, False)
    assert codec.loads_session(value, max_age=110)[0] is not None
    assert codec.loads_session(value, max_age=90) == (None, False)  # cached, still refused
    assert value not in codec._verified  # and forgotten
    assert codec.loads_session(value, max_age=110)[0] is not None


def test_a_signed_value_that_is_no_session_is_refused() -> None:
    codec = CookieCodec([KEY_A])
    for data in (["sid"], payload(sid=""), payload(iat="now")):
        assert codec.loads_session(sign(data, salt="whop_oauth.session"), max_age=60) == (
            None,
            False,
        )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("k" * 40, "secret_keys must be a list of keys, not one key"),
        (Secret("k" * 40), "secret_keys must be a list of keys, not one key"),
        ([], "secret_keys needs at least one key"),
        (["k" * 40, "k" * 31], "every secret key needs at least 32 characters"),
        ([Secret("k" * 31)], "every secret key needs at least 32 characters"),
    ],
)
def test_unusable_secret_keys_are_refused_with_a_clear_message(keys: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CookieCodec(keys)
    assert str(caught.value).startswith(message)
    assert "k" * 31 not in str(caught.value)


def test_an_empty_key_list_says_how_to_make_a_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        CookieCodec([])
    assert str(caught.value) == (
        "secret_keys needs at least one key (with Settings: WHOP_SESSION_SECRETS is not set; "
        'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
    )


def test_secret_keys_of_32_characters_or_as_starlette_secrets_are_accepted() -> None:
    session = SessionData.new("user_1", "biz_1")
    value = CookieCodec([Secret(KEY_A)]).dumps_session(session)
    assert CookieCodec(["a" * 32]).loads_session(value, max_age=60) == (session, True)


def test_the_verified_cache_drops_the_oldest_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cookies, "_VERIFIED_CACHE_SIZE", 2)
    codec = CookieCodec([KEY_A])
    values = [codec.dumps_session(SessionData.new(f"user_{i}", "b")) for i in range(3)]
    for value in values:
        codec.loads_session(value, max_age=60)
    assert list(codec._verified) == values[1:]
    assert _cookies._VERIFIED_CACHE_SIZE == 2
    monkeypatch.undo()
    assert _cookies._VERIFIED_CACHE_SIZE == 4096


# --- names and headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "suffix"),
    [
        ("abcdefgh", "abcdefgh"),
        ("A-b_C0123456789xyzTAIL", "A-b_C0123456789x"),
        ("abcdefg", None),
        ("", None),
        ("abc.defgh", None),
        ("abcdefgh;ijklmnop", None),
        ("abcdefghijklmnop;", "abcdefghijklmnop"),  # only the first 16 characters name it
        ("abcdefgh\u00e9", None),
    ],
)
def test_a_flow_cookie_is_named_after_at_least_8_safe_characters_of_its_state(
    state: str, suffix: str | None
) -> None:
    assert flow_cookie_suffix(state) == suffix


def test_a_cookie_header_is_http_only_and_lax_and_secure_when_asked() -> None:
    assert cookie_header("n", "v", path="/app", max_age=600, secure=True) == (
        "n=v; Path=/app; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
    )
    assert cookie_header("n", "v", path="/", max_age=1, secure=False) == (
        "n=v; Path=/; Max-Age=1; HttpOnly; SameSite=Lax"
    )


@pytest.mark.parametrize("max_age", [0, -5])
def test_a_deleting_cookie_header_expires_in_the_past(max_age: int) -> None:
    assert cookie_header("n", "", path="/", max_age=max_age, secure=True) == (
        "n=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; "
        "SameSite=Lax; Secure"
    )


def test_a_signature_older_than_max_age_is_refused_whatever_login_time_it_carries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker whose clock ran ahead wrote a login time in the future; the signature's own
    # age still bounds the cookie.
    now = time.time()
    data = payload(iat=int(now) + 1000)
    monkeypatch.setattr(time, "time", lambda: now - 100)
    old_signature = sign(data, salt="whop_oauth.session")
    old_flow = sign({"state": "x"}, salt="whop_oauth.flow")
    monkeypatch.undo()
    for codec in (CookieCodec([KEY_A]), CookieCodec([KEY_B, KEY_A])):  # current key, older key
        assert codec.loads_session(old_signature, max_age=60) == (None, False)
        assert codec.loads_session(old_signature, max_age=200)[0] is not None
        assert codec.loads_flow(old_flow, max_age=60) is None


def test_a_verified_value_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = CookieCodec([KEY_B, KEY_A])
    calls: list[str] = []
    for name in ("_session_current", "_session"):
        serializer = getattr(codec, name)
        original = serializer.loads

        def counted(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(serializer, "loads", counted)
    session = SessionData.new("user_1", "biz_1")
    old_value = CookieCodec([KEY_A]).dumps_session(session)
    assert codec.loads_session(old_value, max_age=60) == (session, False)
    assert calls == ["_session_current", "_session"]  # the current key, then every key
    for _ in range(3):
        assert codec.loads_session(old_value, max_age=60) == (session, False)
    assert calls == ["_session_current", "_session"]  # remembered: no HMAC again
    assert codec.loads_session("tampered" + old_value, max_age=60) == (None, False)
    assert codec.loads_session("tampered" + old_value, max_age=60) == (None, False)
    assert len(calls) == 6  # a refused value is never remembered


def test_a_session_is_good_up_to_max_age_inclusive_cached_or_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed_in = 1_800_000_000.0
    monkeypatch.setattr(time, "time", lambda: signed_in)
    codec = CookieCodec([KEY_A])
    session = SessionData.new("user_1", "biz_1")
    value = codec.dumps_session(session)
    monkeypatch.setattr(time, "time", lambda: signed_in + 60)
    assert codec.loads_session(value, max_age=60) == (session, True)  # verified
    assert codec.loads_session(value, max_age=60) == (session, True)  # remembered
    assert CookieCodec([KEY_A]).loads_session(value, max_age=59) == (None, False)
    monkeypatch.setattr(time, "time", lambda: signed_in + 60.5)
    assert codec.loads_session(value, max_age=60) == (None, False)
