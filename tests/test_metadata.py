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


def test_the_sandbox_preset_has_the_same_paths_on_the_sandbox_host() -> None:
    assert WHOP_SANDBOX.issuer == "https://sandbox-api.whop.com"
    assert WHOP_SANDBOX.token_endpoint == "https://sandbox-api.whop.com/oauth/token"


def test_a_trailing_slash_in_the_base_url_does_not_leak_into_the_issuer() -> None:
    assert whop_metadata("http://127.0.0.1:9000/").issuer == "http://127.0.0.1:9000"


def test_discovered_whop_metadata_keeps_whops_json_revoke_body_and_api_base() -> None:
    metadata = ProviderMetadata.from_document(document("https://api.whop.com"))
    assert metadata.revocation_body == "json"
    assert metadata.api_base_url == "https://api.whop.com/api/v1"


def test_other_providers_revoke_with_the_rfc_form_body() -> None:
    metadata = ProviderMetadata.from_document(document("https://auth.whatalo.example"))
    assert metadata.revocation_body == "form"
    assert metadata.api_base_url is None


def test_a_document_for_another_issuer_is_refused() -> None:
    with pytest.raises(DiscoveryError, match="expected"):
        ProviderMetadata.from_document(
            document("https://evil.example"), expected_issuer="https://api.whop.com"
        )


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"authorization_endpoint": "https://x/a", "token_endpoint": "https://x/t"},
        {"issuer": "https://x", "token_endpoint": "https://x/t"},
        {**document("https://x"), "authorization_response_iss_parameter_supported": "yes"},
        {**document("https://x"), "scopes_supported": "openid"},
        {**document("https://x"), "jwks_uri": 42},
    ],
    ids=["not-an-object", "no-issuer", "no-authorize", "iss-flag-not-bool", "scopes-not-list",
         "jwks-not-string"],
)
def test_unusable_documents_raise_discovery_error(bad: object) -> None:
    with pytest.raises(DiscoveryError):
        ProviderMetadata.from_document(bad)  # type: ignore[arg-type]
