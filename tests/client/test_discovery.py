"""Discovery: RFC 8414 and OIDC, issuer must match, TTL cache, one fetch under concurrency.

Most tests here serve the RFC 8414 document only (the OpenID one answers 404); the
merge of several documents is in test_discovery_merge.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from whop_oauth import (
    ConfigurationError,
    DiscoveryError,
    OAuthClient,
    ServerUnavailableError,
    TransportError,
    whop_metadata,
)
from whop_oauth._discovery import discovery_urls

Make = Callable[..., OAuthClient]
ISSUER = "https://login.example"
RFC8414 = f"{ISSUER}/.well-known/oauth-authorization-server"
OIDC = f"{ISSUER}/.well-known/openid-configuration"


def document(issuer: str = ISSUER, **extra: Any) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "code_challenge_methods_supported": ["S256"],
        **extra,
    }


@pytest.fixture(autouse=True)
def oidc_not_served(router: respx.MockRouter) -> None:
    """A test that serves the OpenID document routes OIDC again (the route is replaced)."""
    router.get(OIDC).respond(404)


def test_well_known_urls_follow_rfc_8414_path_insertion_then_oidc() -> None:
    assert discovery_urls("https://login.example") == [RFC8414, OIDC]
    assert discovery_urls("https://login.example/tenant/a") == [
        "https://login.example/.well-known/oauth-authorization-server/tenant/a",
        "https://login.example/tenant/a/.well-known/openid-configuration",
        "https://login.example/tenant/a/.well-known/oauth-authorization-server",
    ]


async def test_metadata_comes_from_the_rfc_8414_document(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.get(RFC8414).respond(
        200, json=document(authorization_response_iss_parameter_supported=True)
    )
    client = make_client(provider=ISSUER)

    metadata = await client.load_metadata()

    assert metadata.token_endpoint == f"{ISSUER}/token"
    assert client.metadata is metadata
    assert client.issuer == ISSUER
    assert client.authorization_request().authorization_response_iss_required
    assert route.call_count == 1


async def test_the_oidc_document_is_used_when_rfc_8414_is_not_served(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(RFC8414).respond(404)
    oidc = router.get(OIDC).respond(200, json=document())

    metadata = await make_client(provider=ISSUER).load_metadata()

    assert metadata.issuer == ISSUER
    assert oidc.call_count == 1


async def test_no_document_anywhere_is_a_discovery_error(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(RFC8414).respond(404)
    router.get(OIDC).respond(404)

    with pytest.raises(DiscoveryError, match="404"):
        await make_client(provider=ISSUER).load_metadata()


@pytest.mark.parametrize(
    "issuer", ["https://attacker.example", ISSUER + "/", "https://LOGIN.example"]
)
async def test_a_document_for_another_issuer_is_refused(
    make_client: Make, router: respx.MockRouter, issuer: str
) -> None:
    router.get(RFC8414).respond(200, json=document(issuer=issuer))

    with pytest.raises(DiscoveryError, match="issuer"):
        await make_client(provider=ISSUER).load_metadata()


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (document(code_challenge_methods_supported=["plain"]), "S256"),
        (document(token_endpoint="http://login.example/token"), "https"),
        (document(token_endpoint=5), "token_endpoint"),
        ([document()], "object"),
    ],
)
async def test_an_unusable_document_is_a_discovery_error(
    make_client: Make, router: respx.MockRouter, doc: Any, match: str
) -> None:
    router.get(RFC8414).respond(200, json=doc)

    with pytest.raises(DiscoveryError, match=match):
        await make_client(provider=ISSUER).load_metadata()


async def test_a_non_json_document_is_a_discovery_error(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(RFC8414).respond(200, html="<html>hello</html>")

    with pytest.raises(DiscoveryError):
        await make_client(provider=ISSUER).load_metadata()


async def test_concurrent_callers_share_one_fetch(
    make_client: Make, router: respx.MockRouter
) -> None:
    release = asyncio.Event()

    async def slow_document(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=document())

    route = router.get(RFC8414).mock(side_effect=slow_document)
    client = make_client(provider=ISSUER)

    waiters = [asyncio.create_task(client.load_metadata()) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters)

    assert route.call_count == 1
    assert all(result is results[0] for result in results)


async def test_a_failed_fetch_reaches_every_concurrent_caller(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.get(RFC8414).mock(side_effect=httpx.ConnectError("refused"))
    client = make_client(provider=ISSUER, max_retries=0)

    results = await asyncio.gather(
        *(client.load_metadata() for _ in range(5)), return_exceptions=True
    )

    assert all(isinstance(r, TransportError) for r in results)
    assert route.call_count == 1


async def test_metadata_is_cached_for_the_ttl(make_client: Make, router: respx.MockRouter) -> None:
    route = router.get(RFC8414).respond(200, json=document())
    client = make_client(provider=ISSUER, discovery_ttl=3600)

    for _ in range(5):
        await client.load_metadata()

    assert route.call_count == 1


async def test_metadata_is_fetched_again_after_the_ttl(
    make_client: Make, router: respx.MockRouter
) -> None:
    route = router.get(RFC8414).respond(200, json=document())
    client = make_client(provider=ISSUER, discovery_ttl=0)

    await client.load_metadata()
    await client.load_metadata()

    assert route.call_count == 2


async def test_fresh_metadata_is_what_load_metadata_gives_without_a_fetch(
    make_client: Make, router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = router.get(RFC8414).respond(200, json=document())
    client = make_client(provider=ISSUER, discovery_ttl=60)
    assert client.fresh_metadata() is None  # not discovered yet: the caller must load
    loaded = await client.load_metadata()

    assert client.fresh_metadata() is loaded
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    assert client.fresh_metadata() is None  # stale: load_metadata() would fetch again
    assert route.call_count == 1


def test_static_metadata_is_always_fresh(make_client: Make) -> None:
    client = make_client(provider=whop_metadata(ISSUER))

    assert client.fresh_metadata() is client.metadata


async def test_a_stale_document_keeps_serving_when_the_refetch_fails(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(RFC8414).mock(
        side_effect=[httpx.Response(200, json=document()), httpx.Response(503)]
    )
    client = make_client(provider=ISSUER, discovery_ttl=0, max_retries=0)
    first = await client.load_metadata()

    second = await client.load_metadata()

    assert second is first


async def test_discovery_is_retried_on_server_errors(
    make_client: Make, router: respx.MockRouter, sleeps: list[float]
) -> None:
    route = router.get(RFC8414).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=document())]
    )

    await make_client(provider=ISSUER).load_metadata()

    assert route.call_count == 2
    assert len(sleeps) == 1


async def test_a_persistent_5xx_is_server_unavailable(
    make_client: Make, router: respx.MockRouter
) -> None:
    router.get(RFC8414).respond(500)

    with pytest.raises(ServerUnavailableError):
        await make_client(provider=ISSUER, max_retries=1).load_metadata()


async def test_metadata_and_authorization_need_loading_first(make_client: Make) -> None:
    client = make_client(provider=ISSUER)

    with pytest.raises(ConfigurationError, match="load_metadata"):
        _ = client.metadata
    with pytest.raises(ConfigurationError, match="load_metadata"):
        client.authorization_request()
    assert client.issuer == ISSUER


@pytest.mark.parametrize("issuer", ["http://login.example", "https://login.example#x", "nope"])
def test_an_insecure_or_malformed_issuer_is_refused(make_client: Make, issuer: str) -> None:
    with pytest.raises(ConfigurationError):
        make_client(provider=issuer)


async def test_a_loopback_issuer_may_use_http(make_client: Make, router: respx.MockRouter) -> None:
    local = "http://127.0.0.1:9999"
    router.get(f"{local}/.well-known/openid-configuration").respond(404)
    router.get(f"{local}/.well-known/oauth-authorization-server").respond(
        200, json=document(issuer=local)
    )

    metadata = await make_client(provider=local).load_metadata()

    assert metadata.token_endpoint == f"{local}/token"
