"""id_token validation (OpenID Connect Core §3.1.3.7) with joserfc and a JWKS cache.

Only asymmetric signatures are accepted: ``none`` and every HMAC algorithm are
refused before any key is looked at, so a token "signed" with the provider's
public key as an HMAC secret can never verify. The JWKS is cached and fetched
again once when a token names a ``kid`` the cached set does not have (the
provider rotated its keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from ._discovery import SingleFlightCache
from ._errors import IdTokenError, InvalidResponseError
from ._http import IDEMPOTENT, HttpSender
from ._token_response import json_object, raise_for_status

__all__ = ["ALLOWED_ALGORITHMS", "IdTokenValidator"]

#: Signature algorithms an id_token may use. Never ``none``, never ``HS*``.
ALLOWED_ALGORITHMS = frozenset(
    {
        "ES256",
        "ES384",
        "ES512",
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "EdDSA",
        "Ed25519",
    }
)
_KEY_TYPES = {"E": "EC", "R": "RSA", "P": "RSA"}  # first letter of the alg → JWK kty


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
    ) -> dict[str, Any]:
        """The verified claims, or ``IdTokenError``.

        ``nonce`` is required at code exchange; after a refresh pass ``None`` and
        the ``subject`` of the original id_token, which must not change.
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
        key = await self._key(kid if isinstance(kid, str) else None, alg)
        try:
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

    async def _key(self, kid: str | None, alg: str) -> Key:
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


def _pick(keys: KeySet, kid: str | None, alg: str) -> Key | None:
    kty = _KEY_TYPES.get(alg[0], "OKP")
    candidates = [k for k in keys if k.key_type == kty and k.get("alg") in (None, alg)]
    if kid is not None:
        matching = [k for k in candidates if k.kid == kid]
        return matching[0] if matching else None
    # Without a kid, a single key of the right type is unambiguous; several are not.
    return candidates[0] if len(candidates) == 1 else None
