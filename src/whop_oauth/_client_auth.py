"""How the client authenticates at the token, revocation and introspection endpoints."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal, cast, get_args
from urllib.parse import quote_plus

from starlette.datastructures import Secret

from ._errors import ConfigurationError

__all__ = ["AuthMethod", "ClientAuth"]

AuthMethod = Literal["client_secret_post", "client_secret_basic", "none"]


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How the client authenticates at the token, revocation and introspection endpoints."""

    client_id: str
    secret: Secret | None
    method: AuthMethod

    @classmethod
    def build(cls, client_id: str, secret: str | None, method: str | None) -> ClientAuth:
        """Default: ``client_secret_post`` with a secret, ``none`` without; refuse mismatches."""
        if method is None:
            method = "client_secret_post" if secret else "none"
        if method not in get_args(AuthMethod):
            raise ConfigurationError(f"unknown token_endpoint_auth_method {method!r}")
        if method == "none" and secret:
            raise ConfigurationError("token_endpoint_auth_method 'none' given with a client_secret")
        if method != "none" and not secret:
            raise ConfigurationError(f"token_endpoint_auth_method {method!r} needs a client_secret")
        return cls(client_id, Secret(secret) if secret else None, cast(AuthMethod, method))

    def apply(self, body: dict[str, str], headers: dict[str, str]) -> None:
        """Add the credentials to a request body and headers, per the method.

        ``client_id`` always goes in the body: Whop lists it as a parameter of every
        token request, and RFC 6749 allows it alongside HTTP Basic.
        """
        body["client_id"] = self.client_id
        if self.method == "client_secret_basic":
            assert self.secret is not None
            # RFC 6749 §2.3.1: each part form-urlencoded before base64.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(str(self.secret))}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif self.method == "client_secret_post":
            assert self.secret is not None
            body["client_secret"] = str(self.secret)
