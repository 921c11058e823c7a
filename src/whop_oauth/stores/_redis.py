"""Redis: for apps on several machines. Lua scripts make each conditional step atomic."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import quote, unquote

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._errors import ConfigurationError, StaleWriteError, TokenStoreError
from .._reasons import clean
from .._token import Token, TokenKey, check_key_part
from ._base import DEFAULT_RETENTION, StoredToken, next_version, page_cursor, purge_at
from ._crypto import TokenCipher
from ._lease import LeaseLocking, ReleaseSignals
from ._redis_sessions import RedisSessions

__all__ = ["RedisTokenStore"]

T = TypeVar("T")

# KEYS[1] grant hash, KEYS[2] the key's lease generation; ARGV: the version the new
# one is based on (0: none), the new version, blob, purge time in ms, fence (-1: none).
# The client encrypts with the new version (it is authenticated with the value), so
# the script only checks that nothing changed since the client read ARGV[1].
_PUT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then return -1 end
if ARGV[5] ~= '-1' then
  local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
  if newest > tonumber(ARGV[5]) then return -2 end
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'b', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
"""
# KEYS[1] grant hash; ARGV[1] expected version (-1: any). -1 stale, else keys deleted.
_DELETE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expected = tonumber(ARGV[1])
if expected >= 0 and current ~= 0 and current ~= expected then return -1 end
return redis.call('DEL', KEYS[1])
"""
# KEYS[1] lock, KEYS[2] generation; ARGV: holder, lease in ms, clock in µs, generation
# TTL in ms. Returns the new generation, or 0 when the lock is held. %d: Lua would
# write a 16-digit number in exponent notation, losing digits.
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local generation = math.max(previous + 1, tonumber(ARGV[3]))
redis.call('SET', KEYS[2], string.format('%d', generation), 'PX', ARGV[4])
return generation
"""
# KEYS[1] lock; ARGV: holder, lease in ms. Extends our lease only: a lapsed one is
# not taken back, since another worker may have held it meanwhile.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Compare-and-delete: only the holder releases its lease.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: How long a key's last lease generation is remembered for fencing (1 day).
_GENERATION_TTL_MS = 24 * 3600 * 1000


def _name(key: TokenKey, kind: str, prefix: str) -> str:
    # Every part percent-escaped (":" and "{" included), so no tenant or user id can
    # forge another's key name, and no cluster hash tag appears by accident.
    tenant, user, issuer, client_id = (quote(part, safe="") for part in key.parts)
    return f"{prefix}:{tenant}:{issuer}:{client_id}:{user}:{kind}"


class RedisTokenStore(LeaseLocking, RedisSessions):
    """Grants in Redis hashes (encrypted), leases as ``SET NX PX`` keys, and the session
    records and spent flows of ``SessionStore`` (see ``RedisSessions``; all expire by TTL).

    Keys are ``whop_oauth:{tenant}:{issuer}:{client_id}:{user}:grant`` (and ``:lock``,
    ``:generation``), each part percent-escaped. Grant keys carry a TTL (the
    retention), so abandoned grants disappear on their own.

    ```python
    store = RedisTokenStore("redis://127.0.0.1:6379/0", cipher=TokenCipher([key]))
    # or: open_store("redis://127.0.0.1:6379/0", encryption_keys=[key])
    ```
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        cipher: TokenCipher,
        retention: float = DEFAULT_RETENTION,
        prefix: str = "whop_oauth",
        max_connections: int = 64,
    ) -> None:
        if isinstance(url_or_client, str):
            # Blocking pool: a burst of callers queues for a connection instead of
            # opening one socket each.
            pool = aioredis.BlockingConnectionPool.from_url(
                url_or_client, max_connections=max_connections
            )
            self._redis = aioredis.Redis.from_pool(pool)
            self._owned = True
        else:
            self._redis = url_or_client
            self._owned = False
        if self._redis.connection_pool.connection_kwargs.get("decode_responses"):
            # Tokens are stored as bytes (ciphertexts); a decoding client corrupts them.
            raise ConfigurationError("the Redis client decodes responses; create it without that")
        self._cipher = cipher
        self._retention = retention
        self._prefix = prefix
        self._signals = ReleaseSignals()
        self._put = self._redis.register_script(_PUT)
        self._delete = self._redis.register_script(_DELETE)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"<RedisTokenStore prefix={self._prefix!r}>"

    def _failed(self, exc: RedisError) -> TokenStoreError:
        """Where and why, e.g. ``Redis token store at cache:6379: ConnectionError: Error 111
        connecting to cache:6379. Connect call failed (...)``; the password never (redacted)."""
        kwargs = self._redis.connection_pool.connection_kwargs
        host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
        where = kwargs.get("path") or f"{host}:{port}"
        cause = clean(str(exc), hide=(kwargs.get("password"), kwargs.get("username")))
        detail = f": {cause}" if cause else ""
        return TokenStoreError(f"Redis token store at {where}: {type(exc).__name__}{detail}")

    async def _call(self, pending: Awaitable[T]) -> T:
        try:
            return await pending
        except RedisError as exc:
            raise self._failed(exc) from None

    async def ping(self) -> None:
        """Fail fast (``TokenStoreError`` with host:port and cause) unless Redis answers:
        for a start-up check, ``await store.ping()``."""
        await self._call(self._redis.ping())

    async def get(self, key: TokenKey) -> StoredToken | None:
        name = _name(key, "grant", self._prefix)
        version, blob = await self._call(self._redis.hmget(name, ["v", "b"]))
        if version is None:
            return None
        if not isinstance(blob, bytes):
            raise TokenStoreError("the Redis client decodes responses; create it without that")
        return StoredToken(self._cipher.decrypt(key, blob, version=int(version)), int(version))

    async def put(
        self,
        key: TokenKey,
        token: Token,
        *,
        expected_version: int | None = None,
        fence: int | None = None,
    ) -> StoredToken:
        names = [_name(key, "grant", self._prefix), _name(key, "generation", self._prefix)]
        for _ in range(_UNCONDITIONAL_TRIES):
            if expected_version is None:
                current = await self._call(self._redis.hget(names[0], "v"))
                base = int(current or 0)
            else:
                base = expected_version
            version = next_version(base)
            purge_ms = int(purge_at(token, self._retention) * 1000)
            blob = self._cipher.encrypt(key, token, version=version)
            args: list[bytes | int] = [
                base,
                version,
                blob,
                purge_ms,
                -1 if fence is None else fence,
            ]
            outcome = int(await self._call(self._put(keys=names, args=args)))
            if outcome == 1:
                return StoredToken(token, version)
            if outcome == -2:
                raise StaleWriteError(_FENCED)
            if expected_version is not None:
                raise StaleWriteError
        raise StaleWriteError("the grant kept changing while it was written")

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool:
        args = [-1 if expected_version is None else expected_version]
        name = _name(key, "grant", self._prefix)
        deleted = int(await self._call(self._delete(keys=[name], args=args)))
        if deleted < 0:
            raise StaleWriteError
        return deleted > 0

    async def grant_keys(
        self, tenant: str, *, after: TokenKey | None = None, limit: int | None = None
    ) -> list[TokenKey]:
        """The keys of every grant stored for ``tenant``, sorted by (user, issuer, client
        id); a page of at most ``limit`` of them after ``after``. Each call is a ``SCAN``
        of the whole keyspace: for maintenance jobs, not for every request."""
        check_key_part("tenant", tenant)
        cursor = page_cursor(after, limit)
        prefix = _glob_escape(f"{self._prefix}:{quote(tenant, safe='')}:")
        names: list[bytes | str] = []
        try:
            async for name in self._redis.scan_iter(match=prefix + "*:grant", count=1000):
                names.append(name)
        except RedisError as exc:
            raise self._failed(exc) from None
        keys = []
        for name in names:
            text = name.decode() if isinstance(name, bytes) else name
            parts = text.split(":")[-5:]  # the prefix itself may hold ':'
            issuer, client_id, user = (unquote(part) for part in parts[1:4])
            keys.append(TokenKey(tenant, user, issuer, client_id))
        ordered = sorted(keys, key=lambda key: (key.user, key.issuer, key.client_id))
        return [key for key in ordered if (key.user, key.issuer, key.client_id) > cursor][:limit]

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> int:
        names = [_name(key, "lock", self._prefix), _name(key, "generation", self._prefix)]
        args: list[str | int] = [holder, _ms(lease), time.time_ns() // 1000, _GENERATION_TTL_MS]
        return int(await self._call(self._acquire(keys=names, args=args)))

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        name = _name(key, "lock", self._prefix)
        return bool(await self._call(self._renew(keys=[name], args=[holder, _ms(lease)])))

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        name = _name(key, "lock", self._prefix)
        return bool(await self._call(self._release(keys=[name], args=[holder])))

    async def aclose(self) -> None:
        if self._owned:
            await self._redis.aclose()


_FENCED = "a newer holder took the refresh lock: this write was fenced"
#: An unconditional put re-reads and retries this often when writers race.
_UNCONDITIONAL_TRIES = 8


def _glob_escape(text: str) -> str:
    # Escaped ids hold no glob characters; a configured prefix might.
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
