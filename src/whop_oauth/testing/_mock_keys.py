"""The mock Whop's ES256 signing keys: a JWKS with kids, signing, rotation."""

from __future__ import annotations

import secrets
import threading
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

__all__ = ["SigningKeys"]


def _new_key() -> ECKey:
    kid = "mock-" + secrets.token_hex(6)
    return ECKey.generate_key(
        "P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"}, private=True
    )


class SigningKeys:
    """The current key signs; older keys stay in the JWKS until dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[ECKey] = [_new_key()]  # last one signs

    @property
    def current(self) -> ECKey:
        with self._lock:
            return self._keys[-1]

    @property
    def kid(self) -> str:
        return str(self.current.kid)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = list(self._keys)
        return {"keys": [dict(key.as_dict(private=False)) for key in reversed(keys)]}

    def rotate(self, *, keep_previous: bool) -> str:
        key = _new_key()
        with self._lock:
            self._keys = [*self._keys, key] if keep_previous else [key]
        return str(key.kid)

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT", **header: Any) -> str:
        key = self.current
        return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": typ, **header}, claims, key)
