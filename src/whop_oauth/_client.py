"""``OAuthClient``: the long-lived OAuth 2.1 client for one app at one provider."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, get_args

import httpx

from ._authorize import AuthorizationRequest, build_authorization_request, ensure_s256
from ._callback import CallbackParams, parse_callback
from ._client_auth import AuthMethod, ClientAuth
from ._discovery import SingleFlightCache, check_endpoints, discover, missing_features
from ._errors import (
    ConfigurationError,
    IdTokenError,
    InvalidCallbackError,
    InvalidResponseError,
    IssuerMismatchError,
    NoGrantError,
    WhopOAuthError,
)
from ._http import IDEMPOTENT, NEVER_RESEND, NO_REPLAY, HttpSender, RetryPolicy
from ._http_options import GivenOrOwnClient, HttpOptions
from ._id_token import IdTokenValidator, refuse_missing_id_token, unverified_subject
from ._metadata import WHOP, ProviderMetadata
from ._scopes import normalise_scope
from ._token import DEFAULT_TENANT, Token, TokenKey
from ._token_response import json_object, parse_token_response, raise_for_status
from ._urls import check_url

__all__ = ["OAuthClient"]

logger = logging.getLogger("whop_oauth.client")

Encoding = Literal["form", "json"]


class OAuthClient:
    """The OAuth 2.1 client of one app: authorize, exchange, refresh, revoke, userinfo.

    Make one per app and keep it for the life of the process; it holds the HTTP
    connection pool and the metadata and JWKS caches.

    Every call to the provider is bounded: each attempt (connect, send, the whole
    answer) by ``timeout`` seconds, and the call with its retries and the waits
    between them by ``deadline`` (default ``2 * timeout``). The HTTP client it makes
    keeps no cookies, and an injected ``http_client``'s cookie jar is neither sent
    nor filled: these requests carry users' grants.

    ``api_base_url`` names the provider's REST API, where users' relative URLs go
    (``user_http_client(request).get("/accounts/me")``); Whop's presets have one.

    >>> client = OAuthClient(client_id="app_123", redirect_uri="https://app.example/cb")
    >>> flow = client.authorization_request()  # send the browser to flow.url
    >>> token = await client.complete_authorization(query, flow)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        client_secret: str | None = None,
        provider: ProviderMetadata | str = WHOP,
        token_endpoint_auth_method: AuthMethod | None = None,
        scope: str | Sequence[str] = "openid profile email",
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        deadline: float | None = None,
        max_retries: int = 2,
        discovery_ttl: float = 3600.0,
        token_request_encoding: Encoding = "form",  # noqa: S107 - an encoding name
        id_token_leeway: float = 60.0,
        max_response_bytes: int = 1_000_000,
        allow_insecure_http: bool = False,
        api_base_url: str | None = None,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError("client_id must be a non-empty string")
        if token_request_encoding not in get_args(Encoding):
            raise ConfigurationError("token_request_encoding must be 'form' or 'json'")
        self._auth = ClientAuth.build(client_id, client_secret, token_endpoint_auth_method)
        self.redirect_uri = check_url(
            redirect_uri, "redirect_uri", allow_insecure_http=allow_insecure_http
        )
        self._scope = normalise_scope(scope)
        self._insecure = allow_insecure_http
        self._encoding = token_request_encoding
        self._leeway = id_token_leeway
        self._static: ProviderMetadata | None = None
        self._discovery: SingleFlightCache[ProviderMetadata] | None = None
        self._told_missing = False
        # The provider's REST API, for relative URLs of users' calls (Whop's presets have one).
        self._api_base = (
            None
            if api_base_url is None
            else check_url(api_base_url, "api_base_url", allow_insecure_http=allow_insecure_http)
        )
        if isinstance(provider, str):
            self._issuer = check_url(provider, "issuer", allow_insecure_http=allow_insecure_http)
            self._discovery = SingleFlightCache(self._discover, discovery_ttl)
        else:
            check_endpoints(provider, allow_insecure_http)
            ensure_s256(provider)
            self._static, self._issuer = self._with_api_base(provider), provider.issuer
        # Everything is checked before an HTTP client exists, so a bad config leaks none.
        options = HttpOptions(
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            max_response_bytes=max_response_bytes,
        )
        self._given_or_own = GivenOrOwnClient(http_client)
        self._http = self._given_or_own.client
        self._sender = HttpSender(self._http, options)
        self._validator: IdTokenValidator | None = None
        self._jwks_ttl = discovery_ttl

    @property
    def client_id(self) -> str:
        return self._auth.client_id

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def deadline(self) -> float:
        """The longest any one call to the provider can take, all attempts and waits included.

        One call is one HTTP exchange with retries (a token request, a revocation, a
        discovery or JWKS fetch); ``refresh()`` may add a discovery before its token
        request and a JWKS fetch after it when those caches are cold.

        >>> OAuthClient(client_id="app_1", redirect_uri="https://a.example/c", timeout=5.0).deadline
        10.0
        """
        return self._sender.options.deadline

    @property
    def metadata(self) -> ProviderMetadata:
        """The provider metadata; with discovery, ``await load_metadata()`` first."""
        if self._static is not None:
            return self._static
        assert self._discovery is not None
        if self._discovery.value is None:
            raise ConfigurationError("provider metadata not loaded: await client.load_metadata()")
        return self._discovery.value

    def fresh_metadata(self) -> ProviderMetadata | None:
        """What ``load_metadata()`` returns when it need not fetch, else ``None``.

        For paths taken on every request: they await ``load_metadata()`` only on ``None``.
        """
        if self._static is not None:
            return self._static
        assert self._discovery is not None
        return self._discovery.current()

    async def load_metadata(self) -> ProviderMetadata:
        """The provider metadata, discovered (and cached for ``discovery_ttl``) if needed."""
        if self._static is not None:
            return self._static
        assert self._discovery is not None
        return await self._discovery.get()

    async def _discover(self) -> ProviderMetadata:
        metadata = await discover(self._sender, self._issuer, allow_insecure_http=self._insecure)
        metadata = self._with_api_base(metadata)
        if not self._told_missing:  # once per client, not at every refetch
            self._told_missing = True
            for line in missing_features(metadata, self._scope):
                logger.warning("provider %s has %s", self._issuer, line)
        return metadata

    def _with_api_base(self, metadata: ProviderMetadata) -> ProviderMetadata:
        if self._api_base is None:
            return metadata
        return dataclasses.replace(metadata, api_base_url=self._api_base)

    def authorization_request(
        self,
        *,
        scope: str | Sequence[str] | None = None,
        company_id: str | None = None,
        extra_params: Mapping[str, str] | None = None,
        next_path: str | None = None,
    ) -> AuthorizationRequest:
        """A new flow: send the browser to ``flow.url`` and keep ``flow`` until the callback."""
        return build_authorization_request(
            self.metadata,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            scope=self._scope if scope is None else normalise_scope(scope),
            company_id=company_id,
            extra_params=extra_params,
            next_path=next_path,
        )

    def parse_callback(self, params: CallbackParams, flow: AuthorizationRequest) -> str:
        """The code from the callback query, after the state and ``iss`` checks."""
        return parse_callback(params, flow)

    async def complete_authorization(
        self, params: CallbackParams, flow: AuthorizationRequest
    ) -> Token:
        """``parse_callback`` then ``exchange_code``: the callback query in, a token out."""
        return await self.exchange_code(parse_callback(params, flow), flow)

    async def exchange_code(self, code: str, flow: AuthorizationRequest) -> Token:
        """Trade the code for a token (sent once: never retried after it may have arrived)."""
        if not isinstance(code, str) or not code:
            raise InvalidCallbackError("there is no code to exchange")
        metadata = await self.load_metadata()
        if flow.issuer != metadata.issuer:
            raise IssuerMismatchError("the flow belongs to another issuer; the code is not sent")
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.code_verifier,
        }
        response = await self._token_request(
            body, "code exchange", NEVER_RESEND, 401, "invalid_client"
        )
        token = parse_token_response(
            response,
            received_at=time.time(),
            requested_scope=flow.scope,
            company_id=flow.company_id,
        )
        if token.id_token is None:
            refuse_missing_id_token(flow.scope, metadata)
            return token
        claims = await self._id_tokens(metadata).validate(token.id_token, nonce=flow.nonce)
        return dataclasses.replace(token, id_token_claims=claims)

    async def refresh(
        self, token: Token, *, before_send: Callable[[], Awaitable[None]] | None = None
    ) -> Token:
        """A fresh access token; the returned token keeps the rotated refresh token.

        ``before_send`` is awaited after discovery, right before the refresh token
        leaves: the ``TokenManager`` checks its lock there, so that nothing slower
        than one request stands between that check and the send. If it raises,
        nothing is sent.
        """
        if not token.refresh_token:
            raise NoGrantError("the token has no refresh token: the user must sign in again")
        metadata = await self.load_metadata()
        body = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        if token.company_id:
            body["company_id"] = token.company_id  # Whop requires the grant's company again
        if token.id_token is not None and metadata.jwks_uri is not None:
            await self._warm_keys(metadata)  # before sending: nothing fetched after the answer
        if before_send is not None:
            await before_send()
        response = await self._token_request(body, "refresh", NO_REPLAY, 401, "invalid_grant")
        new = parse_token_response(response, received_at=time.time(), company_id=token.company_id)
        if new.id_token is not None:
            new = await self._refreshed_id_token(metadata, new, token)
        return token.with_refresh(new)

    async def _warm_keys(self, metadata: ProviderMetadata) -> None:
        try:
            await self._id_tokens(metadata).warm()
        except WhopOAuthError as error:  # the refresh goes on; its id_token goes unchecked
            logger.warning("refresh: the provider's keys could not be fetched (%s)", error)

    async def _refreshed_id_token(
        self, metadata: ProviderMetadata, new: Token, old: Token
    ) -> Token:
        # The refresh token has rotated: from here on, dropping the answer loses the
        # grant. So no request is made before the manager stores it (only keys already
        # fetched are used), and a check that fails keeps the tokens with the sign-in's
        # claims: they came straight from the token endpoint over TLS (OpenID Connect
        # Core §3.1.3.7, step 6). Only an id_token naming another user is refused.
        assert new.id_token is not None
        subject = unverified_subject(new.id_token)
        if old.subject is not None and subject is not None and subject != old.subject:
            raise IdTokenError(
                "the id_token returned by refresh names another user",
                rotated=old.with_refresh(new),
            )
        try:
            claims = await self._id_tokens(metadata).validate(
                new.id_token, nonce=None, subject=old.subject, fetch_keys=False
            )
        except IdTokenError as error:
            logger.warning("refresh: the new id_token was not checked (%s); claims kept", error)
            return dataclasses.replace(new, id_token=None, id_token_claims={})
        return dataclasses.replace(new, id_token_claims=claims)

    async def _token_request(
        self, body: dict[str, str], what: str, policy: RetryPolicy, status: int, error: str
    ) -> httpx.Response:
        metadata = await self.load_metadata()
        headers = {"Accept": "application/json"}
        self._auth.apply(body, headers)
        encoded: dict[str, Any] = {"json": body} if self._encoding == "json" else {"data": body}
        response = await self._sender.send(
            "POST", metadata.token_endpoint, what=what, policy=policy, headers=headers, **encoded
        )
        raise_for_status(response, what, bare_status_errors={status: error, 400: "invalid_request"})
        return response

    async def revoke(
        self,
        token: Token | str,
        *,
        token_type_hint: str = "refresh_token",  # noqa: S107 - a hint name
    ) -> None:
        """Revoke a grant (RFC 7009); a ``Token`` revokes its refresh token if it has one."""
        metadata = await self.load_metadata()
        endpoint = _require(metadata.revocation_endpoint, "revocation")
        if isinstance(token, Token):
            hint = "refresh_token" if token.refresh_token else "access_token"
            value = token.refresh_token or token.access_token
        else:
            value, hint = token, token_type_hint
        headers: dict[str, str] = {}
        if metadata.revocation_body == "json":
            # Whop's {token, client_id}; a confidential client also authenticates
            # (RFC 7009 §2.1), in the body or by Basic as configured.
            payload = {"token": value}
            self._auth.apply(payload, headers)
            encoded: dict[str, Any] = {"json": payload}
        else:
            body = {"token": value, "token_type_hint": hint}
            self._auth.apply(body, headers)
            encoded = {"data": body}
        response = await self._sender.send(
            "POST", endpoint, what="revocation", policy=IDEMPOTENT, headers=headers, **encoded
        )
        raise_for_status(response, "revocation", bare_status_errors={401: "invalid_client"})

    async def introspect(
        self, token: Token | str, *, token_type_hint: str | None = None
    ) -> dict[str, Any]:
        """The provider's view of a token (RFC 7662); ``result["active"]`` is a bool.

        A ``Token`` is introspected by its refresh token if it has one (hint
        ``refresh_token``), else by its access token (hint ``access_token``), as
        ``revoke`` does; ``token_type_hint`` applies to a string only.
        """
        if isinstance(token, Token):
            value = token.refresh_token or token.access_token
            token_type_hint = "refresh_token" if token.refresh_token else "access_token"
        elif isinstance(token, str):
            value = token
        else:  # anything else would be sent as its str() and come back "not active"
            raise ConfigurationError(
                f"introspect() takes a Token or a str, not {type(token).__name__}"
            )
        endpoint = _require((await self.load_metadata()).introspection_endpoint, "introspection")
        body = {"token": value}
        if token_type_hint is not None:
            body["token_type_hint"] = token_type_hint
        headers = {"Accept": "application/json"}
        self._auth.apply(body, headers)
        response = await self._sender.send(
            "POST", endpoint, what="introspection", policy=IDEMPOTENT, headers=headers, data=body
        )
        raise_for_status(response, "introspection", bare_status_errors={401: "invalid_client"})
        result = json_object(response, "introspection")
        if not isinstance(result.get("active"), bool):
            raise InvalidResponseError("introspection: active is not a bool", response=response)
        return result

    async def userinfo(self, token: Token | str) -> dict[str, Any]:
        """The signed-in user's claims (OpenID Connect userinfo), as a dict."""
        endpoint = _require((await self.load_metadata()).userinfo_endpoint, "userinfo")
        access_token = token.access_token if isinstance(token, Token) else token
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        response = await self._sender.send(
            "GET", endpoint, what="userinfo", policy=IDEMPOTENT, headers=headers
        )
        bare = {401: "invalid_token", 403: "insufficient_scope"}
        raise_for_status(response, "userinfo", bare_status_errors=bare)
        claims = json_object(response, "userinfo")
        subject = token.subject if isinstance(token, Token) else None
        if subject is not None and claims.get("sub") != subject:
            # OIDC Core §5.3.4: a userinfo answer for another subject must not be used.
            raise InvalidResponseError(
                "userinfo: sub differs from the id_token's", response=response
            )
        return claims

    def token_key(self, user: str, tenant: str = DEFAULT_TENANT) -> TokenKey:
        """Where this client's token for ``user`` in ``tenant`` is stored."""
        return TokenKey(tenant, user, self.issuer, self.client_id)

    def _id_tokens(self, metadata: ProviderMetadata) -> IdTokenValidator:
        validator = self._validator
        if validator is None or validator.jwks_uri != metadata.jwks_uri:
            validator = IdTokenValidator(
                self._sender,
                jwks_uri=metadata.jwks_uri,
                issuer=metadata.issuer,
                client_id=self.client_id,
                leeway=self._leeway,
                jwks_ttl=self._jwks_ttl,
            )
            self._validator = validator
        return validator

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it (an injected one is left open)."""
        await self._given_or_own.aclose()

    async def __aenter__(self) -> OAuthClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"OAuthClient(client_id={self.client_id!r}, issuer={self.issuer!r})"


def _require(endpoint: str | None, what: str) -> str:
    if endpoint is None:
        raise ConfigurationError(f"the provider has no {what} endpoint")
    return endpoint
