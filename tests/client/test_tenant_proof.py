"""prove_tenant: a sign-in's tenant comes from the provider or the app's verifier, never
from the company the login asked for."""

from __future__ import annotations

import httpx
import pytest

from whop_oauth import (
    DEFAULT_TENANT,
    ConfigurationError,
    InvalidResponseError,
    TenantNotConfirmed,
    Token,
    prove_tenant,
)
from whop_oauth._token_response import parse_token_response


def token(**fields: object) -> Token:
    return Token(access_token="at", refresh_token="rt", **fields)  # type: ignore[arg-type]


def parsed(body: dict[str, object], *, wish: str | None = None) -> Token:
    response = httpx.Response(200, json={"access_token": "at", "token_type": "Bearer", **body})
    return parse_token_response(response, received_at=1000.0, company_id=wish)


def test_a_company_id_field_of_the_token_response_is_kept_apart_from_the_login_wish() -> None:
    got = parsed({"company_id": "biz_granted"}, wish="biz_asked")
    assert (got.company_id, got.granted_company_id) == ("biz_asked", "biz_granted")
    assert Token.from_dict(got.to_dict()) == got


@pytest.mark.parametrize("value", [12, "", ["biz_1"], {"id": "biz_1"}])
def test_a_company_id_field_that_is_not_a_string_is_an_invalid_response(value: object) -> None:
    with pytest.raises(InvalidResponseError, match="company_id"):
        parsed({"company_id": value})


async def test_the_login_wish_alone_proves_nothing() -> None:
    with pytest.raises(TenantNotConfirmed):
        await prove_tenant(token(company_id="biz_asked"))


async def test_no_wish_and_no_confirmation_is_the_default_tenant() -> None:
    assert (await prove_tenant(token()))[0] == DEFAULT_TENANT


@pytest.mark.parametrize(
    "fields",
    [{"granted_company_id": "biz_granted"}, {"id_token_claims": {"company_id": "biz_granted"}}],
    ids=["token-response", "id-token"],
)
async def test_the_confirmed_company_is_the_tenant_and_is_sent_on_refresh(
    fields: dict[str, object],
) -> None:
    tenant, proven = await prove_tenant(token(company_id="biz_asked", **fields))
    assert (tenant, proven.company_id) == ("biz_granted", "biz_granted")


async def test_two_sources_naming_different_companies_are_refused() -> None:
    both = token(granted_company_id="biz_a", id_token_claims={"company_id": "biz_b"})
    with pytest.raises(InvalidResponseError, match="different companies"):
        await prove_tenant(both)


async def test_a_company_id_claim_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidResponseError, match="claim"):
        await prove_tenant(token(id_token_claims={"company_id": 7}))


async def test_the_verifier_decides_even_over_a_confirmed_company() -> None:
    async def verify(got: Token) -> str:
        return f"tenant-of-{got.company_id}"

    tenant, _ = await prove_tenant(token(granted_company_id="biz_granted"), verify)
    assert tenant == "tenant-of-biz_granted"


@pytest.mark.parametrize("answer", ["", "x" * 256, None, 5])
async def test_a_verifier_answer_that_is_not_a_tenant_is_a_configuration_error(
    answer: object,
) -> None:
    async def verify(got: Token) -> str:
        return answer  # type: ignore[return-value]

    with pytest.raises(ConfigurationError, match="tenant_verifier"):
        await prove_tenant(token(), verify)
