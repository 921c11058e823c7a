import dataclasses

import pytest

from whop_oauth import WHOP, WHOP_SANDBOX, DiscoveryError, ProviderMetadata, whop_metadata


def document(issuer: str, **extra: object) -> dict[str, object]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        **extra,
    }


def test_the_whop_preset_uses_the_current_endpoints_not_the_legacy_ones() -> None:
    assert WHOP.issuer == "https://api.whop.com"
    assert WHOP.authorization_endpoint == "https://api.whop.com/oauth/authorize"
    assert WHOP.token_endpoint == "https://api.whop.com/oauth/token"
    assert WHOP.userinfo_endpoint == "https://api.whop.com/oauth/userinfo"
    assert WHOP.revocation_endpoint == "https://api.whop.com/oauth/revoke"
    assert WHOP.jwks_uri == "https://api.whop.com/.well-known/jwks.json"
    assert WHOP.api_base_url == "https://api.whop.com/api/v1"
    assert WHOP.revocation_body == "json"
    assert WHOP.code_challenge_methods_supported == ("S256",)


def urls(metadata: ProviderMetadata) -> dict[str, str | None]:
    return {name: getattr(metadata, name) for name in URL_FIELDS}


URL_FIELDS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "registration_endpoint",
    "jwks_uri",
    "api_base_url",
)


def test_the_sandbox_preset_has_the_same_paths_on_the_sandbox_host() -> None:
    assert urls(WHOP_SANDBOX) == {
        "issuer": "https://sandbox-api.whop.com",
        "authorization_endpoint": "https://sandbox-api.whop.com/oauth/authorize",
        "token_endpoint": "https://sandbox-api.whop.com/oauth/token",
        "userinfo_endpoint": "https://sandbox-api.whop.com/oauth/userinfo",
        "revocation_endpoint": "https://sandbox-api.whop.com/oauth/revoke",
        "introspection_endpoint": None,
        "registration_endpoint": None,
        "jwks_uri": "https://sandbox-api.whop.com/.well-known/jwks.json",
        "api_base_url": "https://sandbox-api.whop.com/api/v1",
    }
    # Everything that is not a URL is Whop's, unchanged.
    assert dataclasses.replace(WHOP_SANDBOX, **urls(WHOP)) == WHOP


def test_a_trailing_slash_in_the_base_url_does_not_leak_into_the_issuer() -> None:
    metadata = whop_metadata("http://127.0.0.1:9000/")
    assert metadata.issuer == "http://127.0.0.1:9000"
    assert metadata.token_endpoint == "http://127.0.0.1:9000/oauth/token"
    assert metadata.api_base_url == "http://127.0.0.1:9000/api/v1"
    assert not any("9000//" in url for url in urls(metadata).values() if url)


def test_discovered_whop_metadata_keeps_whops_json_revoke_body_and_api_base() -> None:
    metadata = ProviderMetadata.from_document(document("https://api.whop.com"))
    assert metadata.revocation_body == "json"
    assert metadata.api_base_url == "https://api.whop.com/api/v1"


def test_whops_json_revoke_body_needs_https_on_a_whop_host() -> None:
    plain = ProviderMetadata.from_document(document("http://api.whop.com"))
    assert (plain.revocation_body, plain.api_base_url) == ("form", None)


def test_other_providers_revoke_with_the_rfc_form_body() -> None:
    metadata = ProviderMetadata.from_document(document("https://auth.whatalo.example"))
    assert metadata.revocation_body == "form"
    assert metadata.api_base_url is None


def test_every_field_of_a_full_document_is_read() -> None:
    issuer = "https://idp.example"
    full = document(
        issuer,
        userinfo_endpoint=f"{issuer}/userinfo",
        revocation_endpoint=f"{issuer}/revoke",
        introspection_endpoint=f"{issuer}/introspect",
        registration_endpoint=f"{issuer}/register",
        jwks_uri=f"{issuer}/jwks",
        scopes_supported=["openid", "email"],
        code_challenge_methods_supported=["S256", "plain"],
        token_endpoint_auth_methods_supported=["private_key_jwt"],
        id_token_signing_alg_values_supported=["RS256"],
        authorization_response_iss_parameter_supported=True,
    )
    metadata = ProviderMetadata.from_document(full, expected_issuer=issuer)
    assert urls(metadata) == {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "registration_endpoint": f"{issuer}/register",
        "jwks_uri": f"{issuer}/jwks",
        "api_base_url": None,
    }
    assert metadata.scopes_supported == ("openid", "email")
    assert metadata.code_challenge_methods_supported == ("S256", "plain")
    assert metadata.token_endpoint_auth_methods_supported == ("private_key_jwt",)
    assert metadata.id_token_signing_alg_values_supported == ("RS256",)
    assert metadata.authorization_response_iss_parameter_supported is True
    assert metadata.issues_id_tokens is True
    assert dict(metadata.raw) == full


def test_a_minimal_document_gets_the_defaults() -> None:
    metadata = ProviderMetadata.from_document(document("https://idp.example"))
    assert metadata.code_challenge_methods_supported == ("S256",)  # PKCE sent regardless
    assert metadata.scopes_supported == ()
    assert metadata.authorization_response_iss_parameter_supported is False
    assert metadata.issues_id_tokens is False  # neither id_token algorithms nor openid
    assert metadata.userinfo_endpoint is None
    assert metadata.jwks_uri is None


def test_the_openid_scope_alone_says_the_provider_issues_id_tokens() -> None:
    with_scope = ProviderMetadata.from_document(
        document("https://idp.example", scopes_supported=["openid"])
    )
    assert with_scope.issues_id_tokens is True


def test_a_document_for_another_issuer_is_refused() -> None:
    with pytest.raises(DiscoveryError) as caught:
        ProviderMetadata.from_document(
            document("https://evil.example"), expected_issuer="https://api.whop.com"
        )
    assert str(caught.value) == (
        "the metadata document is for issuer 'https://evil.example', "
        "expected 'https://api.whop.com'"
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param([], "not a JSON object", id="not-an-object"),
        pytest.param(
            {"authorization_endpoint": "https://x/a", "token_endpoint": "https://x/t"},
            "has no issuer",
            id="no-issuer",
        ),
        pytest.param(
            {"issuer": "https://x", "token_endpoint": "https://x/t"},
            "lacks authorization or token endpoint",
            id="no-authorize",
        ),
        pytest.param(
            {**document("https://x"), "authorization_response_iss_parameter_supported": "yes"},
            "authorization_response_iss_parameter_supported is not a bool",
            id="iss-flag-not-bool",
        ),
        pytest.param(
            {**document("https://x"), "scopes_supported": "openid"},
            "not a list of strings",
            id="scopes-not-list",
        ),
        pytest.param(
            {**document("https://x"), "jwks_uri": 42},
            "'jwks_uri' is not a string",
            id="jwks-not-string",
        ),
    ],
)
def test_unusable_documents_raise_discovery_error(bad: object, message: str) -> None:
    with pytest.raises(DiscoveryError) as caught:
        ProviderMetadata.from_document(bad)  # type: ignore[arg-type]
    assert message in str(caught.value)
