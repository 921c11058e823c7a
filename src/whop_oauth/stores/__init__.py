"""Token stores: where grants live between requests, and the lock that guards refresh.

```python
from whop_oauth.stores import open_store, generate_encryption_key

store = open_store("sqlite:///tokens.db", encryption_keys=[os.environ["WHOP_TOKEN_KEY"]])
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from .._errors import ConfigurationError
from ._base import DEFAULT_RETENTION as DEFAULT_RETENTION
from ._base import StoredToken as StoredToken
from ._base import TokenStore as TokenStore
from ._crypto import TokenCipher as TokenCipher
from ._crypto import generate_encryption_key as generate_encryption_key
from ._lease import Lease as Lease
from ._lease import LeaseBackend as LeaseBackend
from ._lease import LeaseLock as LeaseLock
from ._lease import LeaseLocking as LeaseLocking
from ._memory import MemoryTokenStore as MemoryTokenStore
from ._sessions import SessionRecord as SessionRecord
from ._sessions import SessionStore as SessionStore
from ._sessions import flow_hash as flow_hash
from ._sessions import session_hash as session_hash
from ._sqlite import SQLiteTokenStore as SQLiteTokenStore

if TYPE_CHECKING:
    from ._postgres import PostgresTokenStore as PostgresTokenStore
    from ._redis import RedisTokenStore as RedisTokenStore

__all__ = [
    "DEFAULT_RETENTION",
    "Lease",
    "LeaseBackend",
    "LeaseLock",
    "LeaseLocking",
    "MemoryTokenStore",
    "PostgresTokenStore",
    "RedisTokenStore",
    "SQLiteTokenStore",
    "SessionRecord",
    "SessionStore",
    "StoredToken",
    "TokenCipher",
    "TokenStore",
    "flow_hash",
    "generate_encryption_key",
    "open_store",
    "session_hash",
]

_SCHEMES = (
    "memory://, sqlite:///relative.db, sqlite:////abs/path.db, redis:// or rediss://, "
    "postgresql://user:password@host:5432/db"
)
_OPTIONS = {
    "memory": {"retention"},
    "sqlite": {"retention", "cleanup_interval", "busy_timeout"},
    "redis": {"retention", "prefix", "max_connections"},
    "postgres": {"retention", "cleanup_interval", "schema", "max_connections", "timeout"},
}
_KINDS = {"redis": "redis", "rediss": "redis", "postgresql": "postgres", "postgres": "postgres"}


def __getattr__(name: str) -> Any:
    # redis and psycopg are optional extras: imported only when their store is asked for.
    if name == "RedisTokenStore":
        from ._redis import RedisTokenStore

        return RedisTokenStore
    if name == "PostgresTokenStore":
        from ._postgres import PostgresTokenStore

        return PostgresTokenStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    url: str, *, encryption_keys: Sequence[str] | None = None, **options: Any
) -> TokenStore:
    """A token store chosen by URL.

    ``memory://`` keeps grants in this process. ``sqlite:///tokens.db`` (relative) or
    ``sqlite:////var/lib/app/tokens.db`` (absolute) is the embedded default, safe for
    the processes of one host. ``redis://host:6379/0`` (or ``rediss://``) serves
    several machines, and ``postgresql://user:password@host:5432/db`` (or
    ``postgres://``) keeps grants in the application's PostgreSQL, in a schema of
    their own (``schema=``, default ``whop_oauth``). SQLite, Redis and PostgreSQL
    require ``encryption_keys`` (see
    ``generate_encryption_key``): the first encrypts, any of them decrypts.
    ``options`` go to the backend (``retention=`` seconds for every backend).

    >>> open_store("memory://")
    <MemoryTokenStore grants=0>
    """
    parts = _split(url)
    kind = _KINDS.get(parts.scheme, parts.scheme)
    unknown = set(options) - _OPTIONS[kind]
    if unknown:
        raise ConfigurationError(f"unknown {kind} store option(s): {', '.join(sorted(unknown))}")
    if kind == "memory":
        if parts.netloc or parts.path not in ("", "/"):
            raise ConfigurationError("a memory store URL is just memory://")
        if encryption_keys is not None:
            TokenCipher(encryption_keys)  # validated, so a bad key fails here as elsewhere
        return MemoryTokenStore(**options)
    cipher = _cipher(encryption_keys, kind)
    if kind == "sqlite":
        return SQLiteTokenStore(_sqlite_path(parts), cipher=cipher, **options)
    if kind == "postgres":
        return _open_postgres(url, cipher, options)
    from ._redis import RedisTokenStore

    try:
        return RedisTokenStore(url, cipher=cipher, **options)
    except ValueError:
        raise ConfigurationError(f"the Redis URL is malformed (expected {_SCHEMES})") from None


def _split(url: object) -> SplitResult:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"a token store URL looks like {_SCHEMES}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError:
        raise ConfigurationError(
            f"the token store URL is malformed (expected {_SCHEMES})"
        ) from None
    if parts.scheme not in ("memory", "sqlite", *_KINDS):
        # Only the scheme is echoed: the rest of a URL may hold a password.
        scheme = parts.scheme if parts.scheme.isalnum() else "?"
        raise ConfigurationError(f"unknown token store scheme {scheme!r}: use {_SCHEMES}")
    return parts


def _open_postgres(url: str, cipher: TokenCipher, options: dict[str, Any]) -> TokenStore:
    try:
        from ._postgres import PostgresTokenStore
    except ImportError:
        raise ConfigurationError(
            "the PostgreSQL store needs psycopg: pip install 'whop-oauth[postgres]'"
        ) from None
    return PostgresTokenStore(url, cipher=cipher, **options)


def _sqlite_path(parts: SplitResult) -> str:
    if parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError("a SQLite store URL is sqlite:///relative.db or sqlite:////abs.db")
    path = parts.path[1:]  # sqlite:///x.db → "x.db"; sqlite:////abs/x.db → "/abs/x.db"
    if not path or path.endswith("/"):
        raise ConfigurationError("a SQLite store URL needs a file name: sqlite:///tokens.db")
    return path


def _cipher(keys: Sequence[str] | None, kind: str) -> TokenCipher:
    if keys is None:
        raise ConfigurationError(
            f"the {kind} store needs encryption_keys: tokens are never stored in plaintext "
            "(make one with whop_oauth.generate_encryption_key())"
        )
    return TokenCipher(keys)
