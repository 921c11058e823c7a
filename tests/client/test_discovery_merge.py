"""Discovery merges every well-known document the issuer serves, each for that issuer,
and says once, by name, which endpoint the app will miss."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import respx

from whop_oauth import DiscoveryError, OAuthClient, ServerUnavailableError

Make = Callable[..., OAuthClient]
ROOT = "https://login.example"
ISSUER = f"{ROOT}/o"  # mounted under a path, as django-oauth-toolkit is
INSERTED = f"{ROOT}/.well-known/oauth-authorization-server/o"
APPENDED = f"{ISSUER}/.well-known/oauth-authorization-server"
OIDC = f"{ISSUER}/.well-known/openid-configuration"


def document(issuer: str = ISSUER, **extra: Any) -> dict[str, Any]:
    base = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize/",
        "token_endpoint": f"{issuer}/token/",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile"],
        **extra,
    }
    return {name: value for name, value in base.items() if value is not None}


#: django-oauth-toolkit's shape: userinfo only in the OpenID document...
OIDC_DOC = document(userinfo_endpoint=f"{ISSUER}/userinfo/")
#: ...revocation and introspection only in the RFC 8414 one.
OAUTH_DOC = document(
    revocation_endpoint=f"{ISSUER}/revoke_token/",
    introspection_endpoint=f"{ISSUER}/introspect/",
)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("rfc8414_at", [INSERTED, APPENDED], ids=["inserted", "appended"])
async def test_userinfo_from_the_openid_document_and_revocation_from_rfc_8414_are_both_kept(
    make_client: Make,
    router: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    rfc8414_at: str,
) -> None:
    caplog.set_level(logging.INFO)
    for url in (INSERTED, APPENDED):
        router.get(url).respond(404)
    router.get(rfc8414_at).respond(200, json=OAUTH_DOC)
    router.get(OIDC).respond(200, json=OIDC_DOC)

    metadata = await make_client(provider=ISSUER).load_metadata()

    assert metadata.userinfo_endpoint == f"{ISSUER}/userinfo/"
    assert metadata.revocation_endpoint == f"{ISSUER}/revoke_token/"
    assert metadata.introspection_endpoint == f"{ISSUER}/introspect/"
    assert warnings(caplog) == []


async def test_a_second_document_for_another_issuer_fails_the_load(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(INSERTED).respond(200, json=OAUTH_DOC)
    router.get(OIDC).respond(200, json=document(issuer=f"{ROOT}/other"))
    router.get(APPENDED).respond(404)

    with pytest.raises(DiscoveryError, match="openid-configuration is for issuer"):
        await make_client(provider=ISSUER).load_metadata()


async def test_a_5xx_on_one_document_fails_the_load_rather_than_drop_its_endpoints(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(INSERTED).respond(503)
    router.get(OIDC).respond(200, json=OIDC_DOC)
    router.get(APPENDED).respond(404)

    with pytest.raises(ServerUnavailableError):
        await make_client(provider=ISSUER, max_retries=0).load_metadata()


async def test_the_earlier_document_wins_a_disagreement(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(INSERTED).respond(200, json=document(token_endpoint=f"{ISSUER}/a/"))
    router.get(OIDC).respond(200, json=document(token_endpoint=f"{ISSUER}/b/"))
    router.get(APPENDED).respond(404)

    metadata = await make_client(provider=ISSUER).load_metadata()

    assert metadata.token_endpoint == f"{ISSUER}/a/"


async def test_a_missing_endpoint_is_named_once_at_load_not_at_every_refetch(
    make_client: Make, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    router.get(INSERTED).respond(404)
    router.get(APPENDED).respond(404)
    route = router.get(OIDC).respond(200, json=OIDC_DOC)
    client = make_client(provider=ISSUER, discovery_ttl=0)

    await client.load_metadata()
    await client.load_metadata()

    assert route.call_count == 2
    assert warnings(caplog) == [
        f"provider {ISSUER} has no revocation_endpoint: sign-out and replaced grants are "
        "not revoked at the provider (they stay live until they expire)"
    ]


async def test_without_jwks_an_openid_client_is_told_its_sign_ins_will_fail(
    make_client: Make, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router.get(INSERTED).respond(404)
    router.get(APPENDED).respond(404)
    bare = {**OIDC_DOC, **OAUTH_DOC, "jwks_uri": None}
    router.get(OIDC).respond(200, json={k: v for k, v in bare.items() if v is not None})

    await make_client(provider=ISSUER, scope="openid profile").load_metadata()

    assert warnings(caplog) == [
        f"provider {ISSUER} has no jwks_uri: id_tokens cannot be verified, so openid sign-ins fail"
    ]


async def test_a_failing_appended_location_is_ignored_as_it_is_no_standard_one(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(INSERTED).respond(404)
    router.get(OIDC).respond(200, json=OIDC_DOC)
    router.get(APPENDED).respond(502)

    metadata = await make_client(provider=ISSUER, max_retries=0).load_metadata()

    assert metadata.userinfo_endpoint == f"{ISSUER}/userinfo/"
