"""TokenCipher's protections: a value written by this version stays readable (a fixed
vector), each binding (key, version, format, key id) is checked with its own clear error,
rotation tries every key that could have sealed a value, and no message shows a key."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from whop_oauth import ConfigurationError, DecryptionError, Token, TokenKey
from whop_oauth.stores import TokenCipher, _crypto
from whop_oauth.stores._crypto import generate_encryption_key

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()  # AAECAwQF...Hh8=
ROW = TokenKey("biz_1", "user_1", "https://api.whop.com", "app_1")
# Sealed by TokenCipher([KEY]).encrypt(ROW, GOLDEN_TOKEN, version=7) when the format was
# fixed: rows already on disk must keep decrypting after any change to the code.
GOLDEN_BLOB = bytes.fromhex(
    "0297fe150b476bb8d58363329049e070ed2f6052be75457d18467f0dba0d03137d26d99487479ce674e903"
    "c0c184abe8aee5d0a0d9d8f280b17706cddb0a603048a5d9e53bb65d6f350b7326ac28e8337ce642989a51"
    "46ae6d06af053f71ac860aa8d7394ded9869399a7a70cfbf44892d24b5afc57b44dd1ff1deb39d9e98dc42"
    "bdf349014c6a58aa325d628e07ee88ab9cab1f56b77a945f919504abb4af230b8a83bea64ae11e49348ffb"
    "8cd41c780f965450b19ed883a0ae9629da1127cdfdf32a63674a5dd8eafcb6cbefdf14e29de3952f998589"
    "0a87ff5b37b41740ae76393f4c3c848eec89bf8c9261e7ba19ccc00a6e051ce80081f41f2c29c1f1cd28e9"
    "87d5dd45b45ddf4820759dfe283079"
)
GOLDEN_TOKEN = Token(
    access_token="at_golden",
    refresh_token="rt_golden",
    expires_at=1700000000.0,
    issued_at=1699990000.0,
    scopes=("openid", "profile"),
)


def test_a_value_sealed_by_this_format_still_decrypts() -> None:
    assert TokenCipher([KEY]).decrypt(ROW, GOLDEN_BLOB, version=7) == GOLDEN_TOKEN


def test_the_format_is_a_version_byte_a_key_id_and_a_fresh_nonce() -> None:
    blob = TokenCipher([KEY]).encrypt(ROW, GOLDEN_TOKEN, version=7)
    assert blob[:5] == GOLDEN_BLOB[:5]  # format 2, then the key's 4-byte id
    assert blob[5:17] != GOLDEN_BLOB[5:17]  # a new nonce
    assert len(blob) == len(GOLDEN_BLOB)  # same plaintext, same length: nothing added
    assert TokenCipher([KEY]).decrypt(ROW, blob, version=7) == GOLDEN_TOKEN


@pytest.mark.parametrize(
    ("row", "version"),
    [
        (ROW, 8),
        (ROW, 6),
        (TokenKey("biz_2", "user_1", "https://api.whop.com", "app_1"), 7),
        (TokenKey("biz_1", "user_2", "https://api.whop.com", "app_1"), 7),
        (TokenKey("biz_1", "user_1", "https://other.test", "app_1"), 7),
        (TokenKey("biz_1", "user_1", "https://api.whop.com", "app_2"), 7),
    ],
)
def test_a_value_read_at_another_row_or_version_fails_authentication(
    row: TokenKey, version: int
) -> None:
    with pytest.raises(DecryptionError) as caught:
        TokenCipher([KEY]).decrypt(row, GOLDEN_BLOB, version=version)
    assert str(caught.value) == (
        "a stored token failed authentication: it was altered, belongs to another "
        "tenant, user or client, or is an older value put back in its row"
    )


def test_key_parts_that_join_alike_are_still_different_rows() -> None:
    cipher = TokenCipher([KEY])
    one = TokenKey("biz_1", "a:b", "https://api.whop.com", "app_1")
    other = TokenKey("biz_1:a", "b", "https://api.whop.com", "app_1")
    blob = cipher.encrypt(one, GOLDEN_TOKEN, version=1)
    with pytest.raises(DecryptionError, match="failed authentication"):
        cipher.decrypt(other, blob, version=1)


def test_a_value_of_the_old_format_asks_for_a_new_sign_in() -> None:
    legacy = b"\x01" + GOLDEN_BLOB[1:]
    with pytest.raises(DecryptionError) as caught:
        TokenCipher([KEY]).decrypt(ROW, legacy, version=7)
    assert str(caught.value) == (
        "a stored token was written by whop_oauth 0.1, whose values were not bound "
        "to their version: the user must sign in again"
    )


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x02", GOLDEN_BLOB[:17], b"\x03" + GOLDEN_BLOB[1:], b"{" + GOLDEN_BLOB[1:]],
    ids=["empty", "format-only", "header-only", "unknown-format", "json"],
)
def test_a_value_in_no_known_format_is_refused_as_such(blob: bytes) -> None:
    with pytest.raises(DecryptionError) as caught:
        TokenCipher([KEY]).decrypt(ROW, blob, version=7)
    assert str(caught.value) == "a stored token is not in a format this version can read"


def test_a_header_with_an_empty_sealed_part_is_refused_as_a_bad_format() -> None:
    with pytest.raises(DecryptionError, match="not in a format"):
        TokenCipher([KEY]).decrypt(ROW, GOLDEN_BLOB[:17], version=7)
    with pytest.raises(DecryptionError, match="failed authentication"):
        TokenCipher([KEY]).decrypt(ROW, GOLDEN_BLOB[:18], version=7)  # one byte sealed: tried


def test_a_value_sealed_with_a_removed_key_says_so() -> None:
    with pytest.raises(DecryptionError) as caught:
        TokenCipher([generate_encryption_key()]).decrypt(ROW, GOLDEN_BLOB, version=7)
    assert str(caught.value) == (
        "a stored token was encrypted with a key that is not configured "
        "(was an old key removed from encryption_keys?)"
    )
    assert KEY not in str(caught.value)


def test_rotation_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    new = generate_encryption_key()
    rotated = TokenCipher([new, KEY])
    assert rotated.decrypt(ROW, GOLDEN_BLOB, version=7) == GOLDEN_TOKEN
    blob = rotated.encrypt(ROW, GOLDEN_TOKEN, version=8)
    assert TokenCipher([new]).decrypt(ROW, blob, version=8) == GOLDEN_TOKEN
    with pytest.raises(DecryptionError, match="not configured"):
        TokenCipher([KEY]).decrypt(ROW, blob, version=8)


@pytest.fixture
def colliding_key_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # Key ids are 4 bytes, so two keys can share one: every key then shares this id.
    monkeypatch.setattr(_crypto, "_key_id", lambda raw: b"\x00\x00\x00\x00")


@pytest.mark.usefixtures("colliding_key_ids")
def test_keys_sharing_an_id_are_each_tried() -> None:
    other = generate_encryption_key()
    blob = TokenCipher([KEY]).encrypt(ROW, GOLDEN_TOKEN, version=3)
    assert TokenCipher([other, KEY]).decrypt(ROW, blob, version=3) == GOLDEN_TOKEN
    assert TokenCipher([KEY, other]).decrypt(ROW, blob, version=3) == GOLDEN_TOKEN
    with pytest.raises(DecryptionError, match="failed authentication"):
        TokenCipher([other]).decrypt(ROW, blob, version=3)


def seal(plaintext: bytes, version: int = 1) -> bytes:
    """A value in the current format around any plaintext, as a buggy writer could leave."""
    raw = base64.urlsafe_b64decode(KEY)
    nonce = b"\x07" * 12
    aad = _crypto._associated_data(ROW, version)
    return b"\x02" + _crypto._key_id(raw) + nonce + AESGCM(raw).encrypt(nonce, plaintext, aad)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b'{"access_token": ""}',
        b'{"access_token": "at", "expires_at": "soon"}',
    ],
)
def test_an_authentic_value_that_is_no_token_is_a_decryption_error(plaintext: bytes) -> None:
    with pytest.raises(DecryptionError) as caught:
        TokenCipher([KEY]).decrypt(ROW, seal(plaintext), version=1)
    assert str(caught.value) == "a stored token decrypted but is not a serialised Token"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_sealed_token_is_compact_json_of_its_dict() -> None:
    token = Token(access_token="at", refresh_token="rt", issued_at=5.0)
    compact = json.dumps(token.to_dict(), separators=(",", ":")).encode()
    assert TokenCipher([KEY]).decrypt(ROW, seal(compact), version=1) == token
    assert len(TokenCipher([KEY]).encrypt(ROW, token, version=1)) == 17 + len(compact) + 16


def test_a_generated_key_is_32_random_bytes_in_url_safe_base64() -> None:
    first, second = generate_encryption_key(), generate_encryption_key()
    assert first != second
    assert len(base64.urlsafe_b64decode(first)) == 32
    assert first.isascii()
    assert "+" not in first + second
    assert "/" not in first + second
    TokenCipher([first, second])  # usable as is


def test_keys_are_accepted_with_surrounding_space_and_without_padding() -> None:
    padded = generate_encryption_key()
    assert padded.endswith("=")
    bare = padded.rstrip("=")
    blob = TokenCipher([f"  {bare}\n"]).encrypt(ROW, GOLDEN_TOKEN, version=1)
    assert TokenCipher([padded]).decrypt(ROW, blob, version=1) == GOLDEN_TOKEN
    assert TokenCipher([KEY.rstrip("=")]).decrypt(ROW, GOLDEN_BLOB, version=7) == GOLDEN_TOKEN


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("one-key", "encryption_keys must be a list of keys, not a single value"),
        (b"one-key", "encryption_keys must be a list of keys, not a single value"),
        ({"k": 1}, "encryption_keys must be a list of keys, not a single value"),
        ([], "encryption_keys is empty: at least one key is required"),
        ((), "encryption_keys is empty: at least one key is required"),
        ([KEY, 42], "encryption key #2 is not 32 bytes of URL-safe base64 (got int)"),
        ([None], "encryption key #1 is not 32 bytes of URL-safe base64 (got NoneType)"),
        ([KEY, KEY[:-4]], "encryption key #2 is not 32 bytes of URL-safe base64"),
        ([KEY.rstrip("=") + "AAAA"], "encryption key #1 is not 32 bytes of URL-safe base64"),
        (["A"], "encryption key #1 is not 32 bytes of URL-safe base64"),
        (["%%%%" * 11], "encryption key #1 is not 32 bytes of URL-safe base64"),
    ],
)
def test_unusable_keys_are_refused_by_position_never_by_value(keys: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TokenCipher(keys)  # type: ignore[arg-type]
    assert str(caught.value) == message
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_a_tuple_of_keys_is_a_list_of_keys() -> None:
    assert TokenCipher((KEY,)).decrypt(ROW, GOLDEN_BLOB, version=7) == GOLDEN_TOKEN


def test_the_repr_counts_keys_and_shows_none() -> None:
    other = generate_encryption_key()
    text = repr(TokenCipher([KEY, other, KEY]))
    assert text == "<TokenCipher keys=3>"


def test_a_row_key_with_non_ascii_parts_is_bound_like_any_other() -> None:
    cipher = TokenCipher([KEY])
    accented = TokenKey("bïz_1", "josé", "https://api.whop.com", "app_ü")
    blob = cipher.encrypt(accented, GOLDEN_TOKEN, version=2)
    assert cipher.decrypt(accented, blob, version=2) == GOLDEN_TOKEN
    lookalike = TokenKey("biz_1", "jose", "https://api.whop.com", "app_u")
    with pytest.raises(DecryptionError, match="failed authentication"):
        cipher.decrypt(lookalike, blob, version=2)
