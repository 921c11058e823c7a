"""``remember``: one entry into a bounded in-process memory, the oldest dropped first.

The request path keeps small memories (verified cookies, the sessions of ``Cookie``
headers, users and clients per session). Each is a plain ``dict``, read without a lock;
this is how every one of them takes a new entry.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K")
V = TypeVar("V")


def remember(memory: dict[K, V], key: K, value: V, *, limit: int) -> None:
    """Store ``value`` under ``key``; a new key in a full ``memory`` first drops the oldest.

    A dict keeps insertion order, so its first key is the oldest. A key stored again keeps
    its place. Callers that share ``memory`` between threads hold a lock around this.

    >>> memory = {"a": 1, "b": 2}
    >>> remember(memory, "c", 3, limit=2)
    >>> memory
    {'b': 2, 'c': 3}
    """
    if key not in memory and len(memory) >= limit:
        del memory[next(iter(memory))]
    memory[key] = value
