"""Encryption at rest: AES-256-GCM, bound to the row's key and version, with key rotation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._errors import ConfigurationError, DecryptionError
from .._token import Token, TokenKey

__all__ = ["TokenCipher", "generate_encryption_key"]

# Blob layout: format | key id (4) | nonce (12) | ciphertext+tag. Format 1 (0.1) bound
# the row's key only; format 2 binds its version too, and 1 is no longer read.
_FORMAT = b"\x02"
_LEGACY_FORMAT = b"\x01"
_KEY_ID_LEN = 4
_NONCE_LEN = 12
_HEADER_LEN = 1 + _KEY_ID_LEN + _NONCE_LEN
_AAD_LABEL = b"whop_oauth/token/v2\x00"


def generate_encryption_key() -> str:
    """A new random key for ``encryption_keys``: 32 bytes, URL-safe base64.

    >>> len(generate_encryption_key())
    44
    """
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _decode_key(value: object, position: int) -> bytes:
    # The message names the key's position, never its value.
    problem = f"encryption key #{position} is not 32 bytes of URL-safe base64"
    if not isinstance(value, str):
        raise ConfigurationError(f"{problem} (got {type(value).__name__})")
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError(problem) from None
    if len(raw) != 32:
        raise ConfigurationError(problem)
    return raw


def _key_id(raw: bytes) -> bytes:
    return hashlib.sha256(b"whop_oauth key id\x00" + raw).digest()[:_KEY_ID_LEN]


def _associated_data(key: TokenKey, version: int) -> bytes:
    # JSON of the list is unambiguous, so ("a:b", "c") and ("a", "b:c") differ.
    return _AAD_LABEL + json.dumps([*key.parts, version], ensure_ascii=True).encode("ascii")


class TokenCipher:
    """Encrypts tokens with the first key, decrypts with any of them.

    Each value gets a fresh 12-byte nonce, and the row's ``TokenKey`` (tenant, user,
    issuer, client id) and version are authenticated with it, so a value copied to
    another row, or an older value of the same row put back, does not decrypt.
    Put a new key first to rotate; drop an old key only once every row was
    rewritten (each refresh rewrites its row).

    >>> cipher = TokenCipher([generate_encryption_key()])
    >>> key = TokenKey("biz_1", "user_1", "https://api.whop.com", "app_1")
    >>> blob = cipher.encrypt(key, Token(access_token="at"), version=7)
    >>> cipher.decrypt(key, blob, version=7).access_token
    'at'
    """

    __slots__ = ("_by_id", "_primary", "_primary_id")

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
            raise ConfigurationError("encryption_keys must be a list of keys, not a single value")
        if not keys:
            raise ConfigurationError("encryption_keys is empty: at least one key is required")
        self._by_id: dict[bytes, list[AESGCM]] = {}
        for position, value in enumerate(keys, start=1):
            raw = _decode_key(value, position)
            self._by_id.setdefault(_key_id(raw), []).append(AESGCM(raw))
        first = _decode_key(keys[0], 1)
        self._primary = AESGCM(first)
        self._primary_id = _key_id(first)

    def __repr__(self) -> str:
        return f"<TokenCipher keys={sum(len(v) for v in self._by_id.values())}>"

    def encrypt(self, key: TokenKey, token: Token, *, version: int) -> bytes:
        """Seal ``token`` for the row ``key`` at ``version`` (the version it is written as)."""
        plaintext = json.dumps(token.to_dict(), separators=(",", ":")).encode("utf-8")
        nonce = os.urandom(_NONCE_LEN)
        sealed = self._primary.encrypt(nonce, plaintext, _associated_data(key, version))
        return _FORMAT + self._primary_id + nonce + sealed

    def decrypt(self, key: TokenKey, blob: bytes, *, version: int) -> Token:
        """Open a value read from the row ``key`` whose stored version is ``version``."""
        if blob[:1] == _LEGACY_FORMAT:
            raise DecryptionError(
                "a stored token was written by whop_oauth 0.1, whose values were not bound "
                "to their version: the user must sign in again"
            )
        if len(blob) <= _HEADER_LEN or blob[:1] != _FORMAT:
            raise DecryptionError("a stored token is not in a format this version can read")
        key_id, nonce = blob[1 : 1 + _KEY_ID_LEN], blob[1 + _KEY_ID_LEN : _HEADER_LEN]
        candidates = self._by_id.get(key_id)
        if not candidates:
            raise DecryptionError(
                "a stored token was encrypted with a key that is not configured "
                "(was an old key removed from encryption_keys?)"
            )
        aad = _associated_data(key, version)
        for aead in candidates:
            try:
                plaintext = aead.decrypt(nonce, blob[_HEADER_LEN:], aad)
            except InvalidTag:
                continue
            return _parse(plaintext)
        raise DecryptionError(
            "a stored token failed authentication: it was altered, belongs to another "
            "tenant, user or client, or is an older value put back in its row"
        )


def _parse(plaintext: bytes) -> Token:
    try:
        return Token.from_dict(json.loads(plaintext))
    except (ValueError, AttributeError):
        raise DecryptionError("a stored token decrypted but is not a serialised Token") from None
