"""id_token validation (OpenID Connect Core §3.1.3.7) with joserfc and a JWKS cache.

Only asymmetric signatures are accepted: ``none`` and every HMAC algorithm are
refused before any key is looked at, so a token "signed" with the provider's
public key as an HMAC secret can never verify. The JWKS is cached and fetched
again once when a token names a ``kid`` the cached set does not have (the
provider rotated its keys).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Collection, Mapping
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import Key, KeySet

from ._discovery import SingleFlightCache
from ._errors import IdTokenError, InvalidResponseError
from ._http import IDEMPOTENT, HttpSender
from ._metadata import ProviderMetadata
from ._token_response import json_object, raise_for_status

__all__ = [
    "ALLOWED_ALGORITHMS",
    "IdTokenValidator",
    "refuse_missing_id_token",
    "unverified_subject",
]

# The JWK kty (and, for OKP, the curves) each algorithm verifies with. "EdDSA"
# starts with an E like "ES256" but takes an OKP key, so the whole name is looked up.
_KEY_TYPES = {
    **{f"ES{bits}": "EC" for bits in (256, 384, 512)},
    **{f"{family}{bits}": "RSA" for family in ("RS", "PS") for bits in (256, 384, 512)},
    "EdDSA": "OKP",
    "Ed25519": "OKP",
}
#: Signature algorithms an id_token may use. Never ``none``, never ``HS*``.
ALLOWED_ALGORITHMS = frozenset(_KEY_TYPES)
_OKP_CURVES = {"EdDSA": ("Ed25519", "Ed448"), "Ed25519": ("Ed25519",)}


class IdTokenValidator:
    """Checks id_tokens for one client at one issuer."""

    def __init__(
        self,
        sender: HttpSender,
        *,
        jwks_uri: str | None,
        issuer: str,
        client_id: str,
        leeway: float = 60.0,
        jwks_ttl: float = 3600.0,
    ) -> None:
        self._sender = sender
        self.jwks_uri = jwks_uri
        self.issuer = issuer
        self.client_id = client_id
        self.leeway = leeway
        self._jwks = SingleFlightCache(self._fetch_jwks, jwks_ttl)

    async def validate(
        self,
        id_token: str,
        *,
        nonce: str | None,
        subject: str | None = None,
        fetch_keys: bool = True,
    ) -> dict[str, Any]:
        """The verified claims, or ``IdTokenError``.

        ``nonce`` is required at code exchange; after a refresh pass ``None`` and
        the ``subject`` of the original id_token, which must not change. With
        ``fetch_keys=False`` only keys already fetched are used (a refresh checks its
        id_token without any request between the answer and storing it).
        """
        try:
            compact = jws.extract_compact(id_token.encode())
        except (JoseError, ValueError, UnicodeError):
            raise IdTokenError("the id_token is not a signed JWT") from None
        header = compact.headers()
        alg = header.get("alg")
        # isinstance first: a list or object "alg" is unhashable and would raise TypeError.
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise IdTokenError("the id_token algorithm is not an allowed asymmetric one")
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None, alg, fetch=fetch_keys)
        try:
            if alg == "EdDSA":
                with warnings.catch_warnings():
                    # RFC 9864 deprecates the *name* "EdDSA" for "Ed25519"; providers still
                    # send it, and its Ed25519 signature is the same one.
                    warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
                    claims = jwt.decode(id_token, key, algorithms=[alg]).claims
            else:
                claims = jwt.decode(id_token, key, algorithms=[alg]).claims
        except (JoseError, ValueError):
            raise IdTokenError("the id_token signature does not verify") from None
        self._check_claims(claims, nonce=nonce, subject=subject)
        return claims

    def _check_claims(
        self, claims: dict[str, Any], *, nonce: str | None, subject: str | None
    ) -> None:
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        if subject is not None:
            options["sub"]["value"] = subject
        registry = jwt.JWTClaimsRegistry(leeway=int(self.leeway), **options)
        try:
            registry.validate(claims)
        except JoseError as exc:
            # joserfc messages name the claim, never its value.
            raise IdTokenError(f"id_token claim check failed: {exc}") from None
        aud = claims["aud"]
        azp = claims.get("azp")
        if isinstance(aud, list) and len(aud) > 1 and azp is None:
            raise IdTokenError("id_token has several audiences but no azp")
        if azp is not None and azp != self.client_id:
            raise IdTokenError("id_token azp is not this client")

    async def warm(self) -> None:
        """Fetch the provider's keys now unless fresh ones are known (errors are raised)."""
        if not self._jwks.fresh():
            await self._jwks.get()

    async def _key(self, kid: str | None, alg: str, *, fetch: bool = True) -> Key:
        if not fetch:
            known = self._jwks.value
            found = None if known is None else _pick(known, kid, alg)
            if found is None:
                raise IdTokenError("no key already fetched matches the id_token")
            return found
        keys = await self._jwks.get()
        found = _pick(keys, kid, alg)
        if found is None and kid is not None:
            self._jwks.invalidate()  # a new kid: the provider rotated keys, fetch once more
            found = _pick(await self._jwks.get(), kid, alg)
        if found is None:
            raise IdTokenError("no key in the provider's JWKS matches the id_token")
        return found

    async def _fetch_jwks(self) -> KeySet:
        if self.jwks_uri is None:
            raise IdTokenError("the provider has no jwks_uri to check id_tokens with")
        response = await self._sender.send("GET", self.jwks_uri, what="jwks", policy=IDEMPOTENT)
        raise_for_status(response, "jwks")
        document = json_object(response, "jwks")
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise InvalidResponseError("jwks: no keys list", response=response)
        usable = [k for k in keys if isinstance(k, Mapping) and k.get("use", "sig") == "sig"]
        try:
            return KeySet.import_key_set({"keys": usable})  # type: ignore[typeddict-item]
        except (JoseError, ValueError, TypeError):
            raise InvalidResponseError("jwks: no usable signing key", response=response) from None


def unverified_subject(id_token: str) -> str | None:
    """The ``sub`` an id_token names, read without checking it (``None`` if unreadable)."""
    try:
        payload = json.loads(jws.extract_compact(id_token.encode()).payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    sub = payload.get("sub") if isinstance(payload, dict) else None
    return sub if isinstance(sub, str) else None


def refuse_missing_id_token(requested_scope: Collection[str], metadata: ProviderMetadata) -> None:
    """Raise ``IdTokenError`` for a code exchange answered without an id_token that was due.

    An ``openid`` request to an OpenID provider must come back with an id_token
    (OpenID Connect Core §3.1.3.3); accepting its absence would skip the nonce
    check, the one proof that the code belongs to this browser's sign-in.
    """
    if "openid" in requested_scope and metadata.issues_id_tokens:
        raise IdTokenError(
            "the token response has no id_token although openid was requested, so the nonce "
            "cannot be checked (for a provider without OpenID Connect, set "
            "ProviderMetadata(issues_id_tokens=False) or leave openid out of the scope)"
        )


def _pick(keys: KeySet, kid: str | None, alg: str) -> Key | None:
    kty = _KEY_TYPES[alg]
    candidates = [
        k
        for k in keys
        if k.key_type == kty
        and k.get("alg") in (None, alg)
        and (kty != "OKP" or k.get("crv") in _OKP_CURVES[alg])  # not an X25519 (ECDH) key
    ]
    if kid is not None:
        matching = [k for k in candidates if k.kid == kid]
        return matching[0] if matching else None
    # Without a kid, a single key of the right type is unambiguous; several are not.
    return candidates[0] if len(candidates) == 1 else None
