"""Building the authorization request: the URL and the per-flow secrets to keep.

PKCE is S256 only (OAuth 2.1 §4.1.1); ``state``, ``nonce`` and the code verifier
are fresh for every flow and only the challenge goes into the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ._errors import ConfigurationError, InvalidValueError
from ._metadata import ProviderMetadata
from ._paths import is_local_path

__all__ = ["AuthorizationRequest", "build_authorization_request"]

# Parameters the library sets itself; extra_params may not override them.
RESERVED_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "company_id",
    }
)
_VERIFIER_LENGTH = 64  # RFC 7636 §4.1: 43-128 unreserved characters


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """One sign-in flow: the URL to send the browser to, and what to keep until the callback.

    Keep it server-side or in a signed (and ideally encrypted) cookie bound to the
    browser, and use it once. ``code_verifier`` and ``nonce`` are secrets: they
    stay out of the repr.

    >>> flow = client.authorization_request(company_id="biz_123")  # doctest: +SKIP
    >>> flow.url  # doctest: +SKIP
    'https://api.whop.com/oauth/authorize?response_type=code&...'
    """

    url: str = field(repr=False)
    state: str
    code_verifier: str = field(repr=False)
    nonce: str = field(repr=False)
    redirect_uri: str
    issuer: str
    scope: tuple[str, ...]
    company_id: str | None = None
    next_path: str | None = None
    authorization_response_iss_required: bool = False

    def __post_init__(self) -> None:
        for name in ("url", "state", "code_verifier", "nonce", "redirect_uri", "issuer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidValueError(f"AuthorizationRequest.{name} must be a non-empty string")
        if not isinstance(self.scope, tuple) or not all(isinstance(s, str) for s in self.scope):
            raise InvalidValueError("AuthorizationRequest.scope must be a tuple of strings")
        for name in ("company_id", "next_path"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise InvalidValueError(f"AuthorizationRequest.{name} must be a string or None")
        if not isinstance(self.authorization_response_iss_required, bool):
            raise InvalidValueError(
                "AuthorizationRequest.authorization_response_iss_required must be a bool"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (it contains the verifier: keep it confidential)."""
        data = asdict(self)
        data["scope"] = list(self.scope)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthorizationRequest:
        """Read a dict written by ``to_dict``; raises ``InvalidValueError`` if it is not one.

        Keys it does not know are ignored (a flow saved by an older version had
        ``created_at``).

        >>> AuthorizationRequest.from_dict({"state": "s"})
        Traceback (most recent call last):
        whop_oauth._errors.InvalidValueError: not a serialised AuthorizationRequest
        """
        if not isinstance(data, Mapping):
            raise InvalidValueError("not a serialised AuthorizationRequest")
        scope = data.get("scope")
        if not isinstance(scope, list | tuple):
            raise InvalidValueError("not a serialised AuthorizationRequest")
        try:
            return cls(
                url=data["url"],
                state=data["state"],
                code_verifier=data["code_verifier"],
                nonce=data["nonce"],
                redirect_uri=data["redirect_uri"],
                issuer=data["issuer"],
                scope=tuple(scope),
                company_id=data.get("company_id"),
                next_path=data.get("next_path"),
                authorization_response_iss_required=data.get(
                    "authorization_response_iss_required", False
                ),
            )
        except KeyError:
            raise InvalidValueError("not a serialised AuthorizationRequest") from None


def check_next_path(next_path: str) -> str:
    """Accept only a local absolute path, so a return target is never an open redirect."""
    if not is_local_path(next_path):
        raise ConfigurationError("next_path must be a local path starting with a single '/'")
    return next_path


def ensure_s256(metadata: ProviderMetadata) -> None:
    """Refuse a provider that does not offer PKCE S256 (``plain`` is never used)."""
    if "S256" not in metadata.code_challenge_methods_supported:
        raise ConfigurationError("the provider does not support PKCE S256; plain is refused")


def build_authorization_request(
    metadata: ProviderMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    scope: tuple[str, ...],
    company_id: str | None = None,
    extra_params: Mapping[str, str] | None = None,
    next_path: str | None = None,
) -> AuthorizationRequest:
    """A fresh flow for ``metadata``'s authorization endpoint."""
    ensure_s256(metadata)
    extra = dict(extra_params or {})
    clashing = RESERVED_PARAMS.intersection(extra)
    if clashing:
        raise ConfigurationError(f"extra_params may not set {sorted(clashing)}")
    if company_id is not None and not company_id:
        raise ConfigurationError("company_id must be a non-empty string")
    if next_path is not None:
        check_next_path(next_path)
    verifier = generate_token(_VERIFIER_LENGTH)
    state = generate_token(32)
    nonce = generate_token(32)
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scope),
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if company_id is not None:
        params["company_id"] = company_id
    params.update(extra)
    url = httpx.URL(metadata.authorization_endpoint).copy_merge_params(params)
    return AuthorizationRequest(
        url=str(url),
        state=state,
        code_verifier=verifier,
        nonce=nonce,
        redirect_uri=redirect_uri,
        issuer=metadata.issuer,
        scope=scope,
        company_id=company_id,
        next_path=next_path,
        authorization_response_iss_required=metadata.authorization_response_iss_parameter_supported,
    )
