"""Request parsing and responses shared by the mock Whop's endpoints."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

from ._mock_model import MockClient, OAuthFault

__all__ = [
    "authenticate_client",
    "bearer_token",
    "fault_response",
    "json_response",
    "parse_form",
    "read_json_object",
    "read_params",
]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(dict(body), status_code=status, headers={**_NO_STORE, **(headers or {})})


def fault_response(fault: OAuthFault) -> JSONResponse:
    body = {"error": fault.error, "error_description": fault.description}
    return json_response(body, fault.status, fault.headers)


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; repeated parameters are refused."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthFault("invalid_request", "the form body is not valid") from exc
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            # RFC 6749 §3.2: parameters must not be included more than once.
            raise OAuthFault("invalid_request", f"parameter {name!r} is repeated")
        params[name] = value
    return params


async def read_json_object(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except ValueError as exc:
        raise OAuthFault("invalid_request", "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise OAuthFault("invalid_request", "the JSON body is not an object")
    return data


async def read_params(request: Request) -> dict[str, str]:
    """Parameters from a form body (the RFC's) or a JSON object body (Whop's guide)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        data = await read_json_object(request)
        params = {k: v for k, v in data.items() if v is not None}
        if not all(isinstance(v, str) for v in params.values()):
            raise OAuthFault("invalid_request", "every JSON parameter must be a string")
        return params
    if media_type in ("", "application/x-www-form-urlencoded"):
        return parse_form(await request.body())
    raise OAuthFault("invalid_request", f"unsupported content type {media_type!r}")


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthFault("invalid_request", "malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthFault("invalid_request", "malformed Basic credentials")
    # RFC 6749 §2.3.1: both halves are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


def _invalid_client(description: str, *, basic: bool) -> OAuthFault:
    # RFC 6749 §5.2: a failed Basic attempt must get a WWW-Authenticate challenge.
    headers = {"WWW-Authenticate": 'Basic realm="mock-whop"'} if basic else None
    return OAuthFault("invalid_client", description, status=401, headers=headers)


def authenticate_client(
    request: Request, params: Mapping[str, str], clients: Mapping[str, MockClient]
) -> MockClient:
    """The client behind ``client_secret_basic``, ``client_secret_post`` or ``none``."""
    basic = _basic_credentials(request.headers.get("authorization"))
    body_id, body_secret = params.get("client_id"), params.get("client_secret")
    client_id: str | None
    secret: str | None
    if basic is not None:
        if body_secret is not None:
            raise OAuthFault("invalid_request", "use only one client authentication method")
        if body_id is not None and body_id != basic[0]:
            raise OAuthFault("invalid_request", "client_id differs from the Basic credentials")
        client_id, secret = basic
    else:
        client_id, secret = body_id, body_secret
    if not client_id:
        raise OAuthFault("invalid_request", "client_id is required")
    client = clients.get(client_id)
    if client is None:
        raise _invalid_client("unknown client", basic=basic is not None)
    if client.client_secret is None:
        if secret:
            raise _invalid_client(
                "this client is public and has no secret", basic=basic is not None
            )
        return client
    expected = client.client_secret.encode()
    if secret is None or not hmac.compare_digest(secret.encode(), expected):
        raise _invalid_client("client authentication failed", basic=basic is not None)
    return client


def bearer_token(request: Request) -> str:
    """The access token from ``Authorization: Bearer``; never from the query (OAuth 2.1)."""
    if "access_token" in request.query_params:
        raise OAuthFault("invalid_request", "send the access token in the Authorization header")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # RFC 6750 §3.1: no error code when no credentials were sent at all.
        challenge = {"WWW-Authenticate": 'Bearer realm="mock-whop"'}
        raise OAuthFault(
            "invalid_token", "a Bearer access token is required", status=401, headers=challenge
        )
    return token.strip()
