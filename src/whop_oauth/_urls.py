"""The URL rules of the library: https, except on a loopback host.

A loopback host is ``localhost`` or an address in 127.0.0.0/8 or ``::1``
(RFC 8252 §7.3): traffic to it never leaves the machine, so plain http is allowed
there for development. Everywhere else an http URL needs ``allow_insecure_http``.

>>> is_loopback_host("127.0.0.1"), is_loopback_host("::1"), is_loopback_host("a.example")
(True, True, False)
"""

from __future__ import annotations

import ipaddress

import httpx

from ._errors import ConfigurationError

__all__ = ["check_url", "is_loopback_host"]


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP addresses (IPv6 without brackets, as URLs parse)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, allow_insecure_http: bool = False) -> str:
    """``url`` if it is https (or http on a loopback host, or allowed); else ``ConfigurationError``.

    >>> check_url("http://localhost:8000/cb", "redirect_uri")
    'http://localhost:8000/cb'
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ConfigurationError(f"{what} is not a valid URL") from None
    if parsed.fragment:
        raise ConfigurationError(f"{what} must not contain a fragment")
    if parsed.scheme == "https" and parsed.host:
        return url
    if (
        parsed.scheme == "http"
        and parsed.host
        and (allow_insecure_http or is_loopback_host(parsed.host))
    ):
        return url
    raise ConfigurationError(f"{what} must be an https URL (http only for loopback hosts)")
