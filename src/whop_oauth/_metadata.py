"""Provider metadata (RFC 8414 / OpenID Connect Discovery) and the Whop presets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ._errors import DiscoveryError

__all__ = ["WHOP", "WHOP_SANDBOX", "ProviderMetadata", "whop_metadata"]

#: Hosts whose discovered metadata gets Whop's quirks (JSON revoke body, REST API base).
WHOP_HOSTS = frozenset({"api.whop.com", "sandbox-api.whop.com"})


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DiscoveryError("a metadata list field is not a list of strings")
    return tuple(value)


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise DiscoveryError(f"metadata field {name!r} is not a string")
    return value


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """Where a provider's endpoints are and what it supports.

    Build one by hand, take a preset (``WHOP``, ``WHOP_SANDBOX``), or let the client
    discover it from an issuer.
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    registration_endpoint: str | None = None
    jwks_uri: str | None = None
    scopes_supported: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] = ("S256",)
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()
    id_token_signing_alg_values_supported: tuple[str, ...] = ()
    authorization_response_iss_parameter_supported: bool = False
    #: Whop's revoke endpoint takes ``{token, client_id}`` as JSON rather than a form.
    revocation_body: str = "form"
    #: Base URL of the provider's REST API (``/api/v1`` for Whop), if it has one.
    api_base_url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    #: Whether a code exchange for an ``openid`` flow answers with an id_token
    #: (OpenID Connect Core §3.1.3.3). While True, an answer without one is refused:
    #: its nonce could not be checked. Set False for an OAuth-only provider.
    issues_id_tokens: bool = True

    @classmethod
    def from_document(
        cls, document: Mapping[str, Any], *, expected_issuer: str | None = None
    ) -> ProviderMetadata:
        """Read an RFC 8414 / OIDC discovery document.

        The document's ``issuer`` must equal ``expected_issuer`` exactly (RFC 8414 §3.3).
        Raises ``DiscoveryError`` for anything missing or of the wrong type.
        """
        if not isinstance(document, Mapping):
            raise DiscoveryError("the metadata document is not a JSON object")
        issuer = _optional_str(document, "issuer")
        if issuer is None:
            raise DiscoveryError("the metadata document has no issuer")
        if expected_issuer is not None and issuer != expected_issuer:
            raise DiscoveryError(
                f"the metadata document is for issuer {issuer!r}, expected {expected_issuer!r}"
            )
        authorization_endpoint = _optional_str(document, "authorization_endpoint")
        token_endpoint = _optional_str(document, "token_endpoint")
        if authorization_endpoint is None or token_endpoint is None:
            raise DiscoveryError("the metadata document lacks authorization or token endpoint")
        iss_supported = document.get("authorization_response_iss_parameter_supported", False)
        if not isinstance(iss_supported, bool):
            raise DiscoveryError("authorization_response_iss_parameter_supported is not a bool")
        methods = _strings(document.get("code_challenge_methods_supported"))
        scopes = _strings(document.get("scopes_supported"))
        id_token_algs = _strings(document.get("id_token_signing_alg_values_supported"))
        # Discovery documents cannot say how a revoke body is encoded; Whop wants JSON.
        is_whop = urlsplit(issuer).hostname in WHOP_HOSTS and issuer.startswith("https://")
        return cls(
            issuer=issuer,
            authorization_endpoint=authorization_endpoint,
            token_endpoint=token_endpoint,
            userinfo_endpoint=_optional_str(document, "userinfo_endpoint"),
            revocation_endpoint=_optional_str(document, "revocation_endpoint"),
            introspection_endpoint=_optional_str(document, "introspection_endpoint"),
            registration_endpoint=_optional_str(document, "registration_endpoint"),
            jwks_uri=_optional_str(document, "jwks_uri"),
            scopes_supported=scopes,
            # RFC 8414: absent means PKCE support is unknown; we send S256 regardless.
            code_challenge_methods_supported=methods or ("S256",),
            token_endpoint_auth_methods_supported=_strings(
                document.get("token_endpoint_auth_methods_supported")
            ),
            id_token_signing_alg_values_supported=id_token_algs,
            authorization_response_iss_parameter_supported=iss_supported,
            revocation_body="json" if is_whop else "form",
            api_base_url=f"{issuer.rstrip('/')}/api/v1" if is_whop else None,
            raw=MappingProxyType(dict(document)),
            # OpenID Connect Discovery requires the id_token algorithms; an RFC 8414
            # document of an OAuth-only server names neither them nor the openid scope.
            issues_id_tokens=bool(id_token_algs) or "openid" in scopes,
        )


def whop_metadata(base_url: str = "https://api.whop.com") -> ProviderMetadata:
    """Whop's endpoints under ``base_url`` (production, sandbox, or a mock Whop)."""
    base = base_url.rstrip("/")
    return ProviderMetadata(
        issuer=base,
        authorization_endpoint=f"{base}/oauth/authorize",
        token_endpoint=f"{base}/oauth/token",
        userinfo_endpoint=f"{base}/oauth/userinfo",
        revocation_endpoint=f"{base}/oauth/revoke",
        jwks_uri=f"{base}/.well-known/jwks.json",
        scopes_supported=("openid", "profile", "email"),
        code_challenge_methods_supported=("S256",),
        token_endpoint_auth_methods_supported=(
            "client_secret_post",
            "client_secret_basic",
            "none",
        ),
        id_token_signing_alg_values_supported=("ES256",),
        revocation_body="json",
        api_base_url=f"{base}/api/v1",
    )


#: Whop production (``https://api.whop.com``).
WHOP = whop_metadata()
#: Whop's sandbox (``https://sandbox-api.whop.com``).
WHOP_SANDBOX = whop_metadata("https://sandbox-api.whop.com")
