"""Redis: for apps on several machines. Lua scripts make each conditional step atomic."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import quote

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._errors import StaleWriteError, TokenStoreError
from .._token import Token, TokenKey
from ._base import DEFAULT_RETENTION, StoredToken, purge_at
from ._crypto import TokenCipher
from ._lease import LeaseLocking, ReleaseSignals

__all__ = ["RedisTokenStore"]

T = TypeVar("T")

# KEYS[1] grant hash; ARGV: expected version (-1: any), blob, now in µs, purge time in ms.
# The version is at least the clock in µs, so a re-created grant never reuses one.
_PUT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expected = tonumber(ARGV[1])
if expected >= 0 and current ~= expected then return -1 end
local version = math.max(current + 1, tonumber(ARGV[3]))
-- %d: Lua would write a 16-digit number in exponent notation, losing digits.
redis.call('HSET', KEYS[1], 'v', string.format('%d', version), 'b', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return version
"""
# KEYS[1] grant hash; ARGV[1] expected version (-1: any). -1 stale, else keys deleted.
_DELETE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expected = tonumber(ARGV[1])
if expected >= 0 and current ~= 0 and current ~= expected then return -1 end
return redis.call('DEL', KEYS[1])
"""
# KEYS[1] lock; ARGV: holder, lease in ms. Extends our lease, or takes it back if it
# lapsed and nobody else took it meanwhile.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then
  return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
return 0
"""
# Compare-and-delete: only the holder releases its lease.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _name(key: TokenKey, kind: str, prefix: str) -> str:
    # Every part percent-escaped (":" and "{" included), so no tenant or user id can
    # forge another's key name, and no cluster hash tag appears by accident.
    tenant, user, issuer, client_id = (quote(part, safe="") for part in key.parts)
    return f"{prefix}:{tenant}:{issuer}:{client_id}:{user}:{kind}"


class RedisTokenStore(LeaseLocking):
    """Grants in Redis hashes (encrypted), leases as ``SET NX PX`` keys.

    Keys are ``whop_oauth:{tenant}:{issuer}:{client_id}:{user}:grant`` (and ``:lock``),
    each part percent-escaped. Grant keys carry a TTL (the retention), so abandoned
    grants disappear on their own.

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
        self._cipher = cipher
        self._retention = retention
        self._prefix = prefix
        self._signals = ReleaseSignals()
        self._put = self._redis.register_script(_PUT)
        self._delete = self._redis.register_script(_DELETE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"<RedisTokenStore prefix={self._prefix!r}>"

    async def _call(self, pending: Awaitable[T]) -> T:
        try:
            return await pending
        except RedisError as exc:
            # The type only: redis messages may name hosts, never our values, but stay terse.
            raise TokenStoreError(f"Redis token store: {type(exc).__name__}") from None

    async def get(self, key: TokenKey) -> StoredToken | None:
        name = _name(key, "grant", self._prefix)
        version, blob = await self._call(self._redis.hmget(name, ["v", "b"]))
        if version is None:
            return None
        if not isinstance(blob, bytes):
            raise TokenStoreError("the Redis client decodes responses; create it without that")
        return StoredToken(self._cipher.decrypt(key, blob), int(version))

    async def put(
        self, key: TokenKey, token: Token, *, expected_version: int | None = None
    ) -> StoredToken:
        now = time.time()
        args: list[Any] = [
            -1 if expected_version is None else expected_version,
            self._cipher.encrypt(key, token),
            time.time_ns() // 1000,
            int(purge_at(token, self._retention, now) * 1000),
        ]
        name = _name(key, "grant", self._prefix)
        version = int(await self._call(self._put(keys=[name], args=args)))
        if version < 0:
            raise StaleWriteError
        return StoredToken(token, version)

    async def delete(self, key: TokenKey, *, expected_version: int | None = None) -> bool:
        args = [-1 if expected_version is None else expected_version]
        name = _name(key, "grant", self._prefix)
        deleted = int(await self._call(self._delete(keys=[name], args=args)))
        if deleted < 0:
            raise StaleWriteError
        return deleted > 0

    async def acquire_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        name = _name(key, "lock", self._prefix)
        taken = await self._call(self._redis.set(name, holder, nx=True, px=_ms(lease)))
        return bool(taken)

    async def renew_lease(self, key: TokenKey, holder: str, lease: float) -> bool:
        name = _name(key, "lock", self._prefix)
        return bool(await self._call(self._renew(keys=[name], args=[holder, _ms(lease)])))

    async def release_lease(self, key: TokenKey, holder: str) -> bool:
        name = _name(key, "lock", self._prefix)
        return bool(await self._call(self._release(keys=[name], args=[holder])))

    async def aclose(self) -> None:
        if self._owned:
            await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
