"""The login, callback and logout endpoints."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from .._authorize import AuthorizationRequest
from .._errors import InvalidResponseError, StateMismatchError, WhopOAuthError
from .._hooks import call_hook
from .._reasons import describe
from .._tenants import prove_tenant
from .._token import Token
from ._cookies import MAX_ID_LENGTH, SessionData
from ._origin_check import OriginCheck
from ._pages import NO_CACHE_HEADERS
from ._redirects import origin_of, safe_return_path
from ._state import auth_state

if TYPE_CHECKING:
    from ._site import Site

__all__ = ["AuthEndpoints"]

logger = logging.getLogger("whop_oauth.starlette")

_COMPANY_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_MAX_FORM_BYTES = 8192
_PICTURE_SCHEMES = ("https://", "http://", "data:image/")


class AuthEndpoints:
    """The endpoints behind ``WhopAuth.routes`` (bound methods, so Starlette calls them)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._origins = OriginCheck(site.client.redirect_uri)

    # -- GET /auth/login?next=/path&company_id=biz_... ------------------------------

    async def login(self, request: Request) -> Response:
        site = self.site
        state = auth_state(request)  # fail early and clearly without the middleware
        moved = self._origins.response(request)  # localhost vs 127.0.0.1
        if moved is not None:
            return moved
        origins = site.origins | {origin_of(str(request.base_url))}
        next_path = safe_return_path(
            request.query_params.get("next"), default=site.paths.home, origins=origins
        )
        state.return_path = next_path
        company_id = request.query_params.get("company_id")
        if company_id is not None and not _COMPANY_ID.fullmatch(company_id):
            company_id = None  # not a company id: ignore it rather than forward it
        # company_id is only a wish: the tenant is decided at the callback, from the provider.
        try:
            await site.client.load_metadata()
            flow = site.client.authorization_request(company_id=company_id, next_path=next_path)
        except WhopOAuthError as exc:
            return await site.error_response(request, exc, return_path=next_path)
        cookies = site.cookies
        name = cookies.flow_cookie_name(flow.state)
        assert name is not None  # the client's states are long URL-safe tokens
        value = cookies.codec.dumps_flow({"flow": flow.to_dict()})
        response = RedirectResponse(flow.url, status_code=303, headers=NO_CACHE_HEADERS)
        for stale in cookies.stale_flow_cookies(request):
            response.headers.append("Set-Cookie", cookies.flow_cookie_header(request, stale, None))
        response.headers.append("Set-Cookie", cookies.flow_cookie_header(request, name, value))
        return response

    # -- GET /auth/callback?code=...&state=... ------------------------------------

    async def callback(self, request: Request) -> Response:
        site = self.site
        state = auth_state(request)
        name = site.cookies.flow_cookie_name(request.query_params.get("state") or "")
        raw = request.cookies.get(name) if name is not None else None
        previous = state.session
        state.return_path = site.paths.home  # until the flow says where it was going
        try:
            flow = self._read_flow(raw)
            state.return_path = safe_return_path(flow.next_path, default=site.paths.home)
            await self._spend(flow)
            token = await site.client.complete_authorization(request.url.query, flow)
            session = await self._sign_in(token, flow)
        except WhopOAuthError as exc:
            response = await site.error_response(request, exc, return_path=state.return_path)
        else:
            state.set_session(session)
            if previous is not None:
                await self._end(previous, "the browser signed in again")
            # After the grant is stored: a job started by the hook can use it at once.
            key = site.manager.key(user=session.user, tenant=session.tenant)
            await call_hook(site.on_sign_in, key)
            target = safe_return_path(flow.next_path, default=site.paths.home)
            response = RedirectResponse(target, status_code=303, headers=NO_CACHE_HEADERS)
        if name is not None and raw is not None:
            # Single use: whatever happened, this flow is over.
            deleted = site.cookies.flow_cookie_header(request, name, None)
            response.headers.append("Set-Cookie", deleted)
        return response

    def _read_flow(self, raw: str | None) -> AuthorizationRequest:
        cookies = self.site.cookies
        data = None if raw is None else cookies.codec.loads_flow(raw, max_age=cookies.flow_max_age)
        if data is None:
            raise StateMismatchError("no sign-in with this state is in progress in this browser")
        try:
            flow = AuthorizationRequest.from_dict(data.get("flow") or {})
        except ValueError:
            flow = None
        if flow is None:
            raise StateMismatchError("the sign-in cookie is not a usable flow")
        return flow

    async def _spend(self, flow: AuthorizationRequest) -> None:
        # Once, server-side: a replayed flow cookie (with its callback URL) exchanges nothing.
        sessions = self.site.manager.sessions
        if not await sessions.claim_flow(flow.state, lifetime=self.site.cookies.flow_max_age):
            raise StateMismatchError("this sign-in was already used: start a new one")

    async def _sign_in(self, token: Token, flow: AuthorizationRequest) -> SessionData:
        try:
            claims, user, tenant, token = await self._owner(token)
            session = SessionData.new(
                user,
                tenant,
                scopes=token.scopes or flow.scope,
                name=_text(claims.get("name")) or _text(claims.get("preferred_username")),
                email=_text(claims.get("email")),
                picture=_picture(claims.get("picture")),
            )
            await self._start(session, token)
        except Exception:
            # Also when the app's tenant_verifier fails: nothing stored, nothing left live.
            await self._discard(token)
            raise
        return session

    async def _start(self, session: SessionData, token: Token) -> None:
        # The session record first: a sign-out elsewhere that counts this user's live
        # sessions meanwhile sees it, and leaves the grant stored next alone.
        manager, lifetime = self.site.manager, self.site.cookies.session_max_age
        key = manager.key(user=session.user, tenant=session.tenant)
        await manager.sessions.create(session.session_id, key, lifetime=lifetime)
        try:
            await manager.save(token, user=session.user, tenant=session.tenant)
        except Exception:
            await manager.sessions.end(session.session_id)
            raise

    async def _end(self, session: SessionData, why: str, *, everywhere: bool = False) -> bool:
        """End the session server-side; ``False`` if the store failed (logged)."""
        manager = self.site.manager
        try:
            if everywhere:
                await manager.sign_out_everywhere(user=session.user, tenant=session.tenant)
            else:
                await manager.end_session(session.session_id)
        except WhopOAuthError as exc:
            # Failed revocations never get here (the manager retries them): the store failed.
            logger.warning("ending a session (%s): %s", why, type(exc).__name__)
            return False
        return True

    async def _owner(self, token: Token) -> tuple[Mapping[str, Any], str, str, Token]:
        """``(claims, user, tenant, token)``: who signed in, for which proven tenant."""
        claims = await self._claims(token)
        user = claims.get("sub")
        if not isinstance(user, str) or not user or len(user) > MAX_ID_LENGTH:
            raise InvalidResponseError("the provider did not say who signed in (sub)")
        # The tenant is what the provider (or the app's verifier) confirmed for this grant.
        tenant, token = await prove_tenant(token, self.site.tenant_verifier)
        return claims, user, tenant, token

    async def _claims(self, token: Token) -> Mapping[str, Any]:
        claims = token.id_token_claims
        client = self.site.client
        has_profile = "name" in claims or "email" in claims
        if ("sub" in claims and has_profile) or client.metadata.userinfo_endpoint is None:
            return claims
        # No id_token, or a bare one: the profile is at userinfo (same subject, checked there).
        return {**await client.userinfo(token), **claims}

    async def _discard(self, token: Token) -> None:
        # The grant will not be stored: revoke it rather than leave it live at Whop.
        try:
            await self.site.client.revoke(token)
        except WhopOAuthError as exc:
            reason = describe(exc, hide=(token.access_token, token.refresh_token))
            logger.warning("could not revoke an unused grant: %s", reason)

    # -- POST /auth/logout -------------------------------------------------------

    async def logout(self, request: Request) -> Response:
        return await self._logout(request, everywhere=False)

    # -- POST /auth/logout/everywhere (when WhopAuth(logout_everywhere_path=...)) ------

    async def logout_everywhere(self, request: Request) -> Response:
        return await self._logout(request, everywhere=True)

    async def _logout(self, request: Request, *, everywhere: bool) -> Response:
        site = self.site
        state = auth_state(request)
        if not self._same_origin(request):
            return _forbidden("cross-site sign-out refused")
        session = state.session
        if session is not None:
            posted = await _posted_csrf_token(request)
            # Bytes: compare_digest refuses str with characters outside ASCII (a 500).
            expected = session.session_id.encode()
            if posted is None or not hmac.compare_digest(posted.encode(), expected):
                return _forbidden("missing or wrong CSRF token")
            # Server-side: every copy of this cookie (or, everywhere, every session) ends.
            if not await self._end(session, "sign-out", everywhere=everywhere):
                # The cookie is kept, so that trying again can still end the session.
                return PlainTextResponse(
                    "Sign-out could not be completed (our session store is unavailable). "
                    "Please try again.",
                    status_code=503,
                    headers=NO_CACHE_HEADERS,
                )
        state.clear_session()
        target = site.paths.after_logout or site.paths.home
        return RedirectResponse(target, status_code=303, headers=NO_CACHE_HEADERS)

    def _same_origin(self, request: Request) -> bool:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site != "same-origin":
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True  # not a browser, or an old one: the CSRF token still has to match
        allowed = self.site.origins | {origin_of(str(request.base_url))}
        return origin.lower() in allowed


async def _posted_csrf_token(request: Request) -> str | None:
    """The CSRF token from ``X-CSRF-Token`` or a url-encoded ``csrf_token`` form field."""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return None
    values = parse_qs(body.decode("latin-1")).get("csrf_token", [])
    return values[0] if len(values) == 1 else None


def _forbidden(reason: str) -> Response:
    logger.warning("sign-out refused: %s", reason)
    return PlainTextResponse(
        "Forbidden: the sign-out request did not come from this site.",
        status_code=403,
        headers=NO_CACHE_HEADERS,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _picture(value: Any) -> str | None:
    # Shown as <img src>: only web and inline-image URLs, never javascript: and the like.
    text = _text(value)
    if text is None or not text.lower().startswith(_PICTURE_SCHEMES):
        return None
    return text if urlsplit(text).scheme else None
