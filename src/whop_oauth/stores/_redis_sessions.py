"""``SessionStore`` for ``RedisTokenStore``: a hash per session, a sorted set per grant key.

``{prefix}:session:{id_hash}`` holds the record and expires with it (Redis TTL);
``{prefix}:{tenant}:{issuer}:{client}:{user}:sessions`` lists the key's session
hashes, scored by expiry in ms, and lives as long as its longest session;
``{prefix}:flow:{state_hash}`` marks a spent flow until the flow's lifetime ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from .._errors import TokenStoreError
from .._token import TokenKey
from ._sessions import SessionRecord

__all__ = ["RedisSessions"]

T = TypeVar("T")

# KEYS[1] session hash, KEYS[2] the key's index; ARGV: id hash, tenant, user, issuer,
# client_id, created_at, expires_at (seconds, as text), expires_at in ms.
_CREATE = """
redis.call('HSET', KEYS[1], 't', ARGV[2], 'u', ARGV[3], 'i', ARGV[4], 'c', ARGV[5],
           'cr', ARGV[6], 'ex', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], ARGV[8])
redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
"""
_FIELDS = ["t", "u", "i", "c", "cr", "ex"]
#: Optimistic transactions retried this often when sessions change under them.
_TRIES = 16


class RedisSessions:
    """The session half of ``RedisTokenStore`` (no cluster hash tags, like the grants)."""

    if TYPE_CHECKING:
        _redis: aioredis.Redis
        _prefix: str

        async def _call(self, pending: Awaitable[T]) -> T: ...

    def _session_name(self, id_hash: str) -> str:
        return f"{self._prefix}:session:{id_hash}"

    def _index_name(self, key: TokenKey) -> str:
        # The grant keys' escaping: no tenant or user id can forge another's name.
        tenant, user, issuer, client_id = (quote(part, safe="") for part in key.parts)
        return f"{self._prefix}:{tenant}:{issuer}:{client_id}:{user}:sessions"

    async def create_session(self, id_hash: str, record: SessionRecord) -> None:
        names = [self._session_name(id_hash), self._index_name(record.key)]
        args: list[str | int] = [
            id_hash,
            *record.key.parts,
            repr(record.created_at),
            repr(record.expires_at),
            int(record.expires_at * 1000),
        ]
        script = self._redis.register_script(_CREATE)  # EVALSHA, loaded on first use
        await self._call(script(keys=names, args=args))

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        values = await self._call(self._redis.hmget(self._session_name(id_hash), _FIELDS))
        record = _record(values)
        return record if record is not None and record.live() else None

    async def delete_session(self, id_hash: str) -> bool:
        name = self._session_name(id_hash)
        record = _record(await self._call(self._redis.hmget(name, _FIELDS)))
        if record is None:
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._index_name(record.key), id_hash)
        pipe.delete(name)
        _, deleted = await self._call(pipe.execute())
        return int(deleted) > 0

    async def delete_sessions_for(self, key: TokenKey) -> int:
        index = self._index_name(key)
        for _ in range(_TRIES):
            deleted = await self._call(self._delete_all(index))
            if deleted is not None:
                return deleted
        raise TokenStoreError("the sessions kept changing while they were deleted")

    async def _delete_all(self, index: str) -> int | None:
        # WATCH: a session created meanwhile makes this retry (None) instead of escaping.
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(index)
            members: list[Any] = await pipe.zrange(index, 0, -1)
            pipe.multi()  # type: ignore[no-untyped-call]
            for member in members:
                pipe.delete(self._session_name(member.decode()))
            pipe.delete(index)
            try:
                results = await pipe.execute()
            except WatchError:
                return None
        return sum(int(deleted) for deleted in results[:-1])

    async def count_live_sessions(self, key: TokenKey) -> int:
        index = self._index_name(key)
        now_ms = int(time.time() * 1000)
        await self._call(self._redis.zremrangebyscore(index, "-inf", now_ms))
        members: list[Any] = await self._call(self._redis.zrange(index, 0, -1))
        if not members:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for member in members:
            pipe.exists(self._session_name(member.decode()))
        present = await self._call(pipe.execute())
        # A member whose record is gone (evicted under memory pressure) is no session.
        gone = [m for m, there in zip(members, present, strict=True) if not there]
        if gone:
            await self._call(self._redis.zrem(index, *gone))
        return len(members) - len(gone)

    async def claim_flow(self, state_hash: str, expires_at: float) -> bool:
        name = f"{self._prefix}:flow:{state_hash}"
        ttl_ms = int((expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            return False
        return bool(await self._call(self._redis.set(name, b"1", nx=True, px=ttl_ms)))


def _record(values: list[Any]) -> SessionRecord | None:
    if values[0] is None:
        return None
    tenant, user, issuer, client_id, created, expires = (v.decode() for v in values)
    return SessionRecord(TokenKey(tenant, user, issuer, client_id), float(created), float(expires))
