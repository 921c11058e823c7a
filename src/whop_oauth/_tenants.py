"""The tenant of a new sign-in: what the provider confirmed, never what the login URL asked.

A login's ``company_id`` is a wish: the user can edit or drop it on the authorize
page, and Whop documents nothing that echoes the granted company back. So a
tenant is taken, in order, from the app's ``tenant_verifier`` (an API call,
introspection, a membership check...), else from the provider's own answer (a
``company_id`` field of the token response, a ``company_id`` id_token claim).
Nothing confirmed: the sign-in keeps ``DEFAULT_TENANT`` if it asked for no
company, and fails with ``TenantNotConfirmed`` if it asked for one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from ._errors import ConfigurationError, InvalidResponseError, TenantNotConfirmed
from ._token import DEFAULT_TENANT, Token

__all__ = ["MAX_TENANT_LENGTH", "TenantVerifier", "confirmed_company", "prove_tenant"]

#: ``async (token) -> tenant``: the app's own proof of the tenant a grant belongs to.
TenantVerifier = Callable[[Token], Awaitable[str]]
#: Longest tenant a sign-in may name (sessions refuse longer ones too).
MAX_TENANT_LENGTH = 255


def confirmed_company(token: Token) -> str | None:
    """The company the provider itself named for this grant, or ``None``.

    Read from the token response's ``company_id`` field and the (validated)
    id_token's ``company_id`` claim; ``token.company_id``, the login's wish, is
    not evidence. Two sources naming different companies are an error.

    >>> confirmed_company(Token(access_token="at", company_id="biz_wish")) is None
    True
    """
    claim = token.id_token_claims.get("company_id")
    if claim is not None and (not isinstance(claim, str) or not claim):
        raise InvalidResponseError("the id_token's company_id claim is not a string")
    named = {value for value in (token.granted_company_id, claim) if value}
    if len(named) > 1:
        raise InvalidResponseError("the token response and the id_token name different companies")
    return named.pop() if named else None


async def prove_tenant(token: Token, verifier: TenantVerifier | None = None) -> tuple[str, Token]:
    """``(tenant, token)`` for a token just received from a code exchange.

    With ``verifier``, its answer is the tenant (it may raise ``TenantNotConfirmed``
    to refuse). The returned token's ``company_id`` (sent again on refresh) is the
    confirmed company when the provider named one.

    >>> tenant, token = await prove_tenant(token, verify_membership)  # doctest: +SKIP
    """
    confirmed = confirmed_company(token)
    if confirmed is not None and confirmed != token.company_id:
        # Whop wants the grant's own company on refresh, not the one the login asked for.
        token = dataclasses.replace(token, company_id=confirmed)
    if verifier is not None:
        tenant = await verifier(token)
        if not isinstance(tenant, str) or not tenant or len(tenant) > MAX_TENANT_LENGTH:
            raise ConfigurationError(
                f"tenant_verifier must return a non-empty string (<= {MAX_TENANT_LENGTH} "
                "characters) or raise TenantNotConfirmed"
            )
        return tenant, token
    if confirmed is not None:
        return confirmed, token
    if token.company_id is None:
        return DEFAULT_TENANT, token
    raise TenantNotConfirmed(
        "the sign-in asked for a company that the provider did not confirm "
        "(configure a tenant_verifier that checks it)"
    )
