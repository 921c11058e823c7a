"""The mock Whop's HTTP endpoints, as a starlette route list over ``ProviderState``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ._mock_authorize import PageError, redirect_target, resolve_client, validate
from ._mock_claims import api_account, user_claims
from ._mock_drops import DroppedResponse
from ._mock_faults import Faults
from ._mock_http import (
    authenticate_client,
    bearer_token,
    fault_response,
    json_response,
    parse_form,
    read_params,
)
from ._mock_model import OAuthFault
from ._mock_pages import PAGE_HEADERS, consent_page, error_page
from ._mock_records import AuthorizationRequest
from ._mock_registration import register_client
from ._mock_state import ProviderState

__all__ = ["Endpoints"]

logger = logging.getLogger("whop_oauth.testing")
Handler = Callable[[Request], Awaitable[Response]]


def _page(message: str, status: int = 400) -> HTMLResponse:
    return HTMLResponse(error_page(message), status_code=status, headers=PAGE_HEADERS)


class Endpoints:
    """Request handlers; every piece of state lives in ``ProviderState``."""

    def __init__(
        self,
        state: ProviderState,
        faults: Faults,
        *,
        consent: bool,
        discovery: Callable[[str], dict[str, Any] | None],
    ) -> None:
        self.state = state
        self.faults = faults
        self.consent = consent
        self.discovery = discovery

    def routes(self) -> list[Route]:
        def route(path: str, name: str, handler: Handler, methods: list[str]) -> Route:
            return Route(path, self._guard(name, handler), methods=methods, name=f"mock_{name}")

        return [
            route("/.well-known/openid-configuration", "discovery", self._openid, ["GET"]),
            route("/.well-known/oauth-authorization-server", "discovery", self._oauth, ["GET"]),
            route("/.well-known/jwks.json", "jwks", self._jwks, ["GET"]),
            route("/oauth/authorize", "authorize", self._authorize, ["GET"]),
            Route("/oauth/consent", self._consent, methods=["POST"], name="mock_consent"),
            route("/oauth/token", "token", self._token, ["POST"]),
            route("/oauth/userinfo", "userinfo", self._userinfo, ["GET", "POST"]),
            route("/oauth/revoke", "revoke", self._revoke, ["POST"]),
            route("/oauth/introspect", "introspect", self._introspect, ["POST"]),
            route("/oauth/register", "register", self._register, ["POST"]),
            route("/api/v1/accounts/me", "api", self._account, ["GET"]),
            route("/api/v1/me", "api", self._account, ["GET"]),
        ]

    def _guard(self, name: str, handler: Handler) -> Handler:
        """Serve a queued fault instead, or after a queued delay; map OAuthFault to JSON."""

        async def endpoint(request: Request) -> Response:
            if name == "token":
                self.state.count("token_requests")
            fault = self.faults.take(name)
            if fault is not None and fault.status is not None:
                self.state.count("faults_injected")
                logger.info("mock whop: injected %d on %s", fault.status, name)
                return fault.response()
            if fault is not None and fault.drop is not None:
                self.state.count("faults_injected")
                logger.info("mock whop: dropped a request on %s (%s)", name, fault.drop)
                return DroppedResponse(fault.drop)
            if fault is not None and fault.hold:
                await anyio.sleep(fault.hold)  # before the work: nothing is consumed yet
            try:
                response = await handler(request)
            except OAuthFault as exc:
                response = fault_response(exc)
            if fault is not None:
                # The work is done (tokens rotated...) but the answer comes late.
                await anyio.sleep(fault.delay)
            return response

        return endpoint

    async def _openid(self, request: Request) -> Response:
        return self._document("openid")

    async def _oauth(self, request: Request) -> Response:
        return self._document("oauth")

    def _document(self, kind: str) -> Response:
        document = self.discovery(kind)
        if document is None:
            return json_response({"error": "not_found"}, status=404)
        return json_response(document, headers={"Cache-Control": "max-age=300"})

    async def _jwks(self, request: Request) -> Response:
        return json_response(self.state.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    # -- authorization ----------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        self.state.count("authorize")
        query = request.query_params.multi_items()
        try:
            client, redirect_uri, state = resolve_client(query, self.state.clients)
        except PageError as exc:
            return _page(exc.message)
        try:
            authz = validate(query, client, redirect_uri)
        except OAuthFault as exc:
            return self._redirect_error(redirect_uri, state, exc.error, exc.description)
        with self.state.lock:
            denial = self.state.denials.pop(0) if self.state.denials else None
            user_id = self.state.current_user
        if denial is not None:
            return self._redirect_error(redirect_uri, state, *denial)
        if not self.consent:
            return self._approve(authz, user_id, status=302)
        flow_id = self.state.open_flow(authz, user_id)
        page = consent_page(
            app_name=client.name,
            user=self.state.users[user_id],
            scopes=authz.scope,
            company_id=authz.company_id,
            redirect_uri=redirect_uri,
            flow_id=flow_id,
        )
        return HTMLResponse(page, headers=PAGE_HEADERS)

    async def _consent(self, request: Request) -> Response:
        try:
            form = parse_form(await request.body())
        except OAuthFault as exc:
            return _page(exc.description)
        flow = self.state.take_flow(form.get("flow", ""))
        if flow is None:
            return _page("This sign-in request has expired or was already answered.")
        authz, user_id = flow
        if form.get("decision") == "approve":
            return self._approve(authz, user_id, status=303)
        return self._redirect_error(
            authz.redirect_uri, authz.state, "access_denied", "The user denied access", status=303
        )

    def _approve(self, authz: AuthorizationRequest, user_id: str, *, status: int) -> Response:
        code = self.state.new_code(authz, user_id)
        params = {"code": code, "state": authz.state, "iss": self.state.issuer}
        return RedirectResponse(redirect_target(authz.redirect_uri, params), status_code=status)

    def _redirect_error(
        self, redirect_uri: str, state: str | None, error: str, description: str, status: int = 302
    ) -> Response:
        params = {
            "error": error,
            "error_description": description,
            "state": state,
            "iss": self.state.issuer,
        }
        return RedirectResponse(redirect_target(redirect_uri, params), status_code=status)

    # -- back channel ---------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        params = await read_params(request)
        client = authenticate_client(request, params, self.state.clients)
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return json_response(self.state.exchange_code(client, params))
        if grant_type == "refresh_token":
            return json_response(self.state.refresh(client, params))
        if not grant_type:
            raise OAuthFault("invalid_request", "grant_type is required")
        raise OAuthFault("unsupported_grant_type", "use authorization_code or refresh_token")

    async def _userinfo(self, request: Request) -> Response:
        user, scope = self.state.bearer(bearer_token(request))
        if "openid" not in scope:
            challenge = 'Bearer error="insufficient_scope", scope="openid"'
            raise OAuthFault(
                "insufficient_scope",
                "userinfo needs the openid scope",
                status=403,
                headers={"WWW-Authenticate": challenge},
            )
        self.state.count("userinfo")
        return json_response(user_claims(user, scope))

    async def _revoke(self, request: Request) -> Response:
        params = await read_params(request)
        client = authenticate_client(request, params, self.state.clients)
        token = params.get("token")
        if not token:
            raise OAuthFault("invalid_request", "token is required")
        self.state.revoke(client, token)
        self.state.count("revoke")
        return json_response({})

    async def _introspect(self, request: Request) -> Response:
        params = await read_params(request)
        client = authenticate_client(request, params, self.state.clients)
        token = params.get("token")
        if not token:
            raise OAuthFault("invalid_request", "token is required")
        body = self.state.introspect(client, token)
        self.state.count("introspect")
        return json_response(body)

    async def _register(self, request: Request) -> Response:
        body = await register_client(request, self.state)
        self.state.count("registrations")
        return json_response(body, status=201)

    async def _account(self, request: Request) -> Response:
        user, scope = self.state.bearer(bearer_token(request))
        self.state.count("api_calls")
        return json_response(api_account(user, scope))
