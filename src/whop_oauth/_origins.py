"""Origins as ``(scheme, host, port)`` tuples: where a credential may be sent.

Two URLs share an origin when scheme, host and port are equal (RFC 6454); the
default port is filled in, so ``https://a.example`` and ``https://a.example:443``
are one origin. Parse the allowed URLs once, then compare tuples.

>>> parse_origin("https://API.example/v1/me?x=1")
('https', 'api.example', 443)
>>> origin_or_none("not a url") is None
True
"""

from __future__ import annotations

import httpx

from ._errors import ConfigurationError

__all__ = ["DEFAULT_PORTS", "Origin", "origin_or_none", "parse_origin"]

Origin = tuple[str, str, int]
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(url: httpx.URL | str) -> Origin:
    """The origin of an absolute http(s) URL; ``ConfigurationError`` for anything else."""
    origin = origin_or_none(url)
    if origin is None:
        raise ConfigurationError("an allowed origin must be an absolute http(s) URL")
    return origin


def origin_or_none(url: httpx.URL | str) -> Origin | None:
    """The origin of ``url``, or ``None`` when it is relative, not http(s), or unparsable."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL:
        return None
    scheme, host = parsed.scheme, parsed.host
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return (scheme, host, parsed.port or DEFAULT_PORTS[scheme])
