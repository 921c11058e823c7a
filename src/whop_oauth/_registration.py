"""RFC 7591 dynamic client registration, for providers that offer it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ._errors import ConfigurationError, InvalidResponseError
from ._http import NEVER_RESEND, HttpSender
from ._http_options import GivenOrOwnClient, HttpOptions
from ._metadata import ProviderMetadata
from ._token_response import json_object, raise_for_status

__all__ = ["register_client"]


async def register_client(
    provider: ProviderMetadata,
    client_metadata: Mapping[str, Any],
    *,
    http_client: httpx.AsyncClient | None = None,
    initial_access_token: str | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - per-request httpx timeout, like the client's
) -> dict[str, Any]:
    """Register a client at ``provider`` and return its registration response.

    The response holds ``client_id`` (always) and, for a confidential client,
    ``client_secret``: store it like a password. The request is never retried once
    it may have reached the server, since a second one would register a second
    client. Refusals (``invalid_redirect_uri``, ``invalid_client_metadata``) raise
    ``ProviderError``.

    >>> registered = await register_client(metadata, {
    ...     "client_name": "My app",
    ...     "redirect_uris": ["https://app.example/auth/callback"],
    ...     "token_endpoint_auth_method": "none",
    ... })  # doctest: +SKIP
    >>> registered["client_id"]  # doctest: +SKIP
    'client_abc'
    """
    if provider.registration_endpoint is None:
        raise ConfigurationError("the provider has no registration endpoint")
    if not isinstance(client_metadata, Mapping):
        raise ConfigurationError("client_metadata must be a mapping")
    uris = client_metadata.get("redirect_uris")
    if uris is not None and (
        not isinstance(uris, list | tuple) or not all(isinstance(u, str) for u in uris)
    ):
        raise ConfigurationError("redirect_uris must be a list of strings")
    headers = {"Accept": "application/json"}
    if initial_access_token:
        headers["Authorization"] = f"Bearer {initial_access_token}"
    options = HttpOptions(timeout=timeout)
    async with GivenOrOwnClient(http_client) as client:
        response = await HttpSender(client, options).send(
            "POST",
            provider.registration_endpoint,
            what="registration",
            policy=NEVER_RESEND,
            headers=headers,
            json=dict(client_metadata),
        )
    raise_for_status(response, "registration", bare_status_errors={401: "invalid_token"})
    registered = json_object(response, "registration")
    if not isinstance(registered.get("client_id"), str) or not registered["client_id"]:
        raise InvalidResponseError("registration: the response has no client_id", response=response)
    return registered
