"""Server-side sessions: SessionRegistry's short memory (its window, its bound, what it
never forgets) and the memory SessionStore's bookkeeping, each seen from outside by the
store reads a check costs and the answers it gets."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from whop_oauth import TokenKey
from whop_oauth._session_registry import MAX_TTL, MISS, SessionRegistry
from whop_oauth.stores import MemoryTokenStore, SessionRecord, flow_hash, session_hash

ISSUER = "https://api.whop.com"
ALICE = TokenKey("biz_1", "user_alice", ISSUER, "app_1")
BOB = TokenKey("biz_1", "user_bob", ISSUER, "app_1")


class CountingStore(MemoryTokenStore):
    """A memory store that counts session reads, so the registry's memory is visible."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        self.reads += 1
        return await super().get_session(id_hash)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry(
    ttl: float = MAX_TTL, size: int = 10_000
) -> tuple[SessionRegistry, CountingStore, Clock]:
    store = CountingStore()
    sessions = SessionRegistry(store, ttl=ttl, size=size)
    clock = Clock()
    sessions._clock = clock
    return sessions, store, clock


# --- hashes --------------------------------------------------------------------------


def test_session_and_flow_hashes_are_fixed_so_stored_sessions_survive_an_upgrade() -> None:
    assert session_hash("sid-golden") == (
        "68b314fdb651ea59dc5262551bd3ddecfbbe58ce9b343f0c9a6b0b2c1db2d0f5"
    )
    assert flow_hash("state-golden") == (
        "1153512385dfac17b4771c058052562e63a55092b9d2aacf8beb429c6ee82180"
    )
    # Domain-separated: the same string is a different session and flow, and no bare hash.
    assert session_hash("x") != flow_hash("x")
    assert session_hash("x") != hashlib.sha256(b"x").hexdigest()


# --- the registry ----------------------------------------------------------------------


async def test_create_stores_a_record_of_the_lifetime_under_the_ids_hash() -> None:
    sessions, store, _ = registry()
    before = time.time()
    record = await sessions.create("sid-1", ALICE, lifetime=3600)
    after = time.time()
    assert record.key == ALICE
    assert before <= record.created_at <= after
    assert record.expires_at == pytest.approx(record.created_at + 3600)
    assert await store.get_session(session_hash("sid-1")) == record
    assert sessions.peek("sid-1") == record  # remembered: no read for the next request


async def test_a_remembered_session_costs_no_read_until_its_window_ends() -> None:
    sessions, store, clock = registry(ttl=2.0)
    record = await sessions.create("sid-1", ALICE, lifetime=3600)
    clock.now += 1.9
    assert await sessions.get("sid-1") == record
    assert store.reads == 0
    clock.now += 0.1  # the window is over: ask the store again
    assert sessions.peek("sid-1") is MISS
    assert await sessions.get("sid-1") == record
    assert store.reads == 1
    clock.now += 1.0
    assert await sessions.get("sid-1") == record
    assert store.reads == 1  # remembered again from that read


async def test_the_window_never_exceeds_five_seconds() -> None:
    sessions, _, clock = registry(ttl=60.0)
    await sessions.create("sid-1", ALICE, lifetime=3600)
    clock.now += 4.9
    assert sessions.peek("sid-1") != MISS
    clock.now += 0.1
    assert sessions.peek("sid-1") is MISS
    assert MAX_TTL == 5.0


async def test_the_window_ends_when_the_session_expires_if_that_is_sooner() -> None:
    sessions, _, clock = registry(ttl=5.0)
    await sessions.create("sid-1", ALICE, lifetime=1.0)
    clock.now += 0.9
    assert sessions.peek("sid-1") != MISS
    clock.now += 0.2
    assert sessions.peek("sid-1") is MISS


@pytest.mark.parametrize("ttl", [0.0, -3.0])
async def test_without_a_window_every_check_asks_the_store(ttl: float) -> None:
    sessions, store, _ = registry(ttl=ttl)
    record = await sessions.create("sid-1", ALICE, lifetime=3600)
    assert sessions.peek("sid-1") is MISS
    assert await sessions.get("sid-1") == record
    assert await sessions.get("sid-1") == record
    assert store.reads == 2
    await sessions.end("sid-1")
    reads = store.reads
    assert await sessions.get("sid-1") is None  # an ended session is still remembered
    assert store.reads == reads


async def test_an_ended_or_unknown_session_is_remembered_as_gone_for_good() -> None:
    sessions, store, clock = registry()
    await sessions.create("sid-1", ALICE, lifetime=3600)
    assert await sessions.end("sid-1") is not None
    assert await store.get_session(session_hash("sid-1")) is None  # deleted in the store
    assert await sessions.get("unknown") is None
    reads = store.reads
    clock.now += 10_000
    assert sessions.peek("sid-1") is None
    assert sessions.peek("unknown") is None
    assert await sessions.get("sid-1") is None
    assert store.reads == reads


async def test_end_returns_the_record_it_ended_and_none_the_second_time() -> None:
    sessions, _, _ = registry()
    record = await sessions.create("sid-1", ALICE, lifetime=3600)
    other = SessionRegistry(sessions.store)  # another process
    assert await other.end("sid-1") == record
    assert await other.end("sid-1") is None
    assert await other.get("sid-1") is None


async def test_end_all_ends_one_users_sessions_and_keeps_the_others() -> None:
    sessions, store, clock = registry()
    await sessions.create("a1", ALICE, lifetime=3600)
    await sessions.create("a2", ALICE, lifetime=3600)
    bob = await sessions.create("b1", BOB, lifetime=3600)
    await sessions.get("gone")  # remembered as ended: untouched by end_all
    assert await sessions.count_live(ALICE) == 2
    assert await sessions.end_all(ALICE) == 2
    assert await sessions.count_live(ALICE) == 0
    assert await sessions.count_live(BOB) == 1
    reads = store.reads
    assert sessions.peek("a1") is None  # ended at once in this process
    assert sessions.peek("a2") is None
    assert sessions.peek("b1") == bob
    assert sessions.peek("gone") is None
    clock.now += 10_000
    assert await sessions.get("a1") is None  # for good
    assert store.reads == reads
    assert await sessions.end_all(ALICE) == 0


async def test_the_memory_is_bounded_and_drops_the_oldest_first() -> None:
    sessions, _, _ = registry(size=2)
    await sessions.create("s1", ALICE, lifetime=3600)
    await sessions.create("s2", ALICE, lifetime=3600)
    await sessions.end("s1")  # remembered again, as ended: now the newest entry
    assert len(sessions._memory) == 2
    s3 = await sessions.create("s3", BOB, lifetime=3600)
    assert sessions.peek("s2") is MISS  # the oldest went
    assert sessions.peek("s1") is None
    assert sessions.peek("s3") == s3
    assert len(sessions._memory) == 2


async def test_a_flow_is_claimed_once_until_its_lifetime_ends() -> None:
    sessions, store, _ = registry()
    assert await sessions.claim_flow("state-1", lifetime=600) is True
    assert await sessions.claim_flow("state-1", lifetime=600) is False
    assert await SessionRegistry(store).claim_flow("state-1", lifetime=600) is False
    assert await sessions.claim_flow("state-2", lifetime=600) is True
    assert store._spent_flows[flow_hash("state-1")] == pytest.approx(time.time() + 600, abs=5)


def test_miss_and_the_registry_show_no_secret_in_their_repr() -> None:
    store = MemoryTokenStore()
    assert repr(MISS) == "MISS"
    assert repr(SessionRegistry(store)) == f"<SessionRegistry store={store!r}>"


# --- the memory session store ------------------------------------------------------------


def make_record(key: TokenKey = ALICE, lifetime: float = 3600.0) -> SessionRecord:
    now = time.time()
    return SessionRecord(key, now, now + lifetime)


def test_a_record_is_live_until_its_expiry_exactly() -> None:
    record = SessionRecord(ALICE, 0.0, 10.0)
    assert record.live(9.999)
    assert not record.live(10.0)
    assert SessionRecord(ALICE, 0.0, time.time() + 60).live()
    assert not SessionRecord(ALICE, 0.0, time.time() - 1).live()


async def test_deleting_sessions_keeps_no_empty_index_behind() -> None:
    store = MemoryTokenStore()
    await store.create_session("h1", make_record())
    await store.create_session("h2", make_record())
    await store.create_session("h3", make_record(BOB))
    assert await store.delete_session("h1") is True
    assert store._sessions_by_key[ALICE] == {"h2"}
    assert await store.delete_session("h1") is False
    assert await store.delete_session("h2") is True
    assert ALICE not in store._sessions_by_key
    assert await store.delete_sessions_for(BOB) == 1
    assert store._session_rows == {}
    assert store._sessions_by_key == {}
    assert await store.delete_sessions_for(BOB) == 0


async def test_live_sessions_are_counted_and_expired_ones_are_not() -> None:
    store = MemoryTokenStore()
    await store.create_session("h1", make_record())
    await store.create_session("h2", make_record(lifetime=-1))
    assert await store.count_live_sessions(ALICE) == 1
    assert await store.count_live_sessions(BOB) == 0
    assert await store.get_session("h2") is None


async def test_a_flow_is_refused_once_its_own_lifetime_is_over_or_at_its_end() -> None:
    store = MemoryTokenStore()
    now = time.time()
    assert await store.claim_flow("f1", now - 0.001) is False
    assert await store.claim_flow("f2", now + 0.05) is True
    assert await store.claim_flow("f2", now + 0.05) is False
    await asyncio.sleep(0.06)
    # Its remembered claim is over: the flow itself was past its lifetime by then anyway.
    assert await store.claim_flow("f2", time.time() + 60) is True


async def test_expired_records_are_swept_at_most_once_a_minute() -> None:
    store = MemoryTokenStore()
    await store.create_session("dead", make_record(lifetime=-1))  # sweeps first: nothing yet
    store._spent_flows["old"] = time.time() - 1
    await store.create_session("live", make_record())  # within the minute: no sweep
    assert "dead" in store._session_rows
    now = time.time()
    assert store._sweep_sessions(now + 59) == 0  # not due
    assert "dead" in store._session_rows
    assert store._sweep_sessions(now + 61) == 1  # due: the dead one goes, the live one stays
    assert set(store._session_rows) == {"live"}
    assert store._sessions_by_key == {ALICE: {"live"}}
    assert store._spent_flows == {}
    assert store._sweep_sessions(now + 62) == 0  # swept a second ago
    await store.create_session("dead2", make_record(lifetime=-1))
    assert store._sweep_sessions(now + 62, force=True) == 1


async def test_a_claim_sweeps_spent_flows_when_due() -> None:
    store = MemoryTokenStore()
    await store.claim_flow("f1", time.time() + 600)
    store._spent_flows["old"] = time.time() - 1
    store._next_sweep = 0.0
    assert await store.claim_flow("f2", time.time() + 600) is True
    assert set(store._spent_flows) == {"f1", "f2"}


async def test_a_window_under_a_second_still_remembers() -> None:
    sessions, store, clock = registry(ttl=0.5)
    record = await sessions.create("sid-1", ALICE, lifetime=3600)
    assert await sessions.get("sid-1") == record
    assert store.reads == 0
    clock.now += 0.5
    assert sessions.peek("sid-1") is MISS


async def test_an_entry_remembered_again_moves_to_the_newest_place() -> None:
    sessions, _, _ = registry(size=3)
    await sessions.create("s1", ALICE, lifetime=3600)
    await sessions.create("s2", ALICE, lifetime=3600)
    await sessions.end("s1")  # s1 is now newer than s2
    await sessions.create("s3", ALICE, lifetime=3600)
    await sessions.create("s4", ALICE, lifetime=3600)  # full: the oldest, s2, goes
    assert sessions.peek("s2") is MISS
    assert sessions.peek("s1") is None


async def test_without_a_window_live_sessions_never_push_ended_ones_out() -> None:
    sessions, store, _ = registry(ttl=0, size=2)
    await sessions.create("ended", ALICE, lifetime=3600)
    await sessions.end("ended")
    for n in range(3):
        await sessions.create(f"live-{n}", ALICE, lifetime=3600)
    reads = store.reads
    assert await sessions.get("ended") is None
    assert store.reads == reads  # still remembered as ended: no read


async def test_a_flow_claim_is_refused_at_its_expiry_and_free_again_at_the_end_of_a_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryTokenStore()
    monkeypatch.setattr(time, "time", lambda: 5000.0)
    assert await store.claim_flow("f1", 5000.0) is False  # its lifetime ends now
    store._spent_flows["f2"] = 5000.0  # a claim that ends now
    assert await store.claim_flow("f2", 5600.0) is True
    assert await store.claim_flow("f2", 5600.0) is False


async def test_by_default_10000_sessions_are_remembered_for_5_seconds() -> None:
    sessions = SessionRegistry(MemoryTokenStore())
    clock = Clock()
    sessions._clock = clock
    for n in range(10_000):
        await sessions.create(f"s{n}", ALICE, lifetime=3600)
    assert sessions.peek("s0") != MISS
    await sessions.create("one more", ALICE, lifetime=3600)
    assert sessions.peek("s0") is MISS
    assert sessions.peek("s1") != MISS
    clock.now += 4.99
    assert sessions.peek("s1") != MISS
    clock.now += 0.01
    assert sessions.peek("s1") is MISS


async def test_a_sweep_judges_expiry_at_the_time_it_is_given() -> None:
    store = MemoryTokenStore()
    await store.create_session("hour", make_record(lifetime=3600))
    store._spent_flows["flow"] = 9000.0
    assert store._sweep_sessions(time.time() + 60, force=True) == 0
    assert store._sweep_sessions(time.time() + 7200, force=True) == 1  # gone by then
    assert store._session_rows == {}
    store._spent_flows = {"ends": 9000.0, "later": 9000.5}
    store._sweep_sessions(9000.0, force=True)
    assert set(store._spent_flows) == {"later"}  # a claim ending now is over


async def test_a_sweep_is_due_exactly_a_minute_after_the_last() -> None:
    store = MemoryTokenStore()
    await store.create_session("dead", SessionRecord(ALICE, 0.0, 1.0))
    store._next_sweep = 1060.0  # as a sweep at 1000.0 leaves it
    assert store._sweep_sessions(1059.9) == 0
    assert store._sweep_sessions(1060.0) == 1
