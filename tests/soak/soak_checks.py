"""Reading the soak's event logs back, and the checks the soak asserts.

Definitions (every time is ``time.monotonic()``, one clock for the whole host):

* **Stale read.** A ``get`` that *started* after some process's ``put`` of the same
  key had *returned* (the write was acknowledged), yet returned a lower version. For a
  store that promises read-after-write across processes this is never allowed, and it
  needs no guess about timing: both ends are measured in the process that saw them.
* **Forked version.** One (key, version) read or written with two different refresh
  tokens: two writers believed they wrote the same row version.
* **Reuse incident.** A refresh token the mock had rotated, presented again: the mock
  revoked the grant. The mock's own log (``soak_mock``) says which request it rotated
  for and which it refused, joined to the senders' logs by request id. It is *caused
  by chaos* only when (a) the rotation's sender was frozen (SIGSTOP) or killed between
  sending its request and storing the answer, so the answer died or waited with it,
  or (b) the
  refused request's sender was frozen after its last lease check (``reserve``) and
  before the mock got the request, so nothing could stop it. No client can prevent
  either. Every other cause is reported: the answer lost to a deadline, a rotated
  token received but never stored, a request handled after its sender's lease ran
  out, or a token presented after its rotation was stored (a stale read).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Event = dict[str, Any]


def load_events(folder: Path) -> list[Event]:
    """Every event of every log under ``folder``; a line cut by SIGKILL is skipped."""
    events: list[Event] = []
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    events.sort(key=lambda event: event["t"])
    return events


@dataclass
class Chaos:
    """What the harness did to each process, from its own log."""

    stops: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    kills: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: Iterable[Event], end: float) -> Chaos:
        chaos = cls()
        open_stops: dict[str, float] = {}
        for event in events:
            if event["ev"] == "sigstop":
                open_stops[event["target"]] = event["t"]
            elif event["ev"] == "sigcont":
                began = open_stops.pop(event["target"])
                chaos.stops.setdefault(event["target"], []).append((began, event["t"]))
            elif event["ev"] == "sigkill":
                chaos.kills[event["target"]] = event["t"]
        for target, began in open_stops.items():
            chaos.stops.setdefault(target, []).append((began, end))
        return chaos

    def hit(self, process: str, began: float, ended: float | None) -> bool:
        """Whether ``process`` was frozen or killed while an operation was under way."""
        finish = float("inf") if ended is None else ended
        killed = self.kills.get(process)
        if killed is not None and began <= killed <= finish:
            return True
        return any(stop <= finish and began <= cont for stop, cont in self.stops.get(process, []))


def stale_reads(events: list[Event]) -> list[str]:
    """Reads that returned an older version than a write acknowledged before they began."""
    acked: dict[str, list[tuple[float, int, str]]] = defaultdict(list)  # key -> (t, v, who)
    deleting: dict[str, float] = {}  # key -> when its first deletion began
    for event in events:
        if event["ev"] == "put":
            acked[event["k"]].append((event["t"], event["v"], event["p"]))
        elif event["ev"] == "delete":
            deleting[event["k"]] = min(event["t0"], deleting.get(event["k"], float("inf")))
    problems = []
    for event in events:
        if event["ev"] != "get" or event["t"] > deleting.get(event["k"], float("inf")):
            continue  # once a deletion began, nothing is expected any more (deletions are checked)
        before = [w for w in acked[event["k"]] if w[0] < event["t0"]]
        if not before:
            continue
        newest = max(before, key=lambda write: write[1])
        if event["v"] < newest[1]:
            problems.append(
                f"{event['p']} read {event['k']} v{event['v']} at {event['t0']:.3f}, "
                f"but {newest[2]} had stored v{newest[1]} at {newest[0]:.3f}"
            )
    return problems


def forked_versions(events: list[Event]) -> list[str]:
    seen: dict[tuple[str, int], set[str | None]] = defaultdict(set)
    for event in events:
        if event["ev"] in ("get", "put") and event["v"]:
            seen[(event["k"], event["v"])].add(event["rt"])
    return [
        f"{key} v{version}: {len(rts)} refresh tokens"
        for (key, version), rts in seen.items()
        if len(rts) > 1
    ]


@dataclass
class Attempt:
    """One refresh request as its sender saw it."""

    process: str
    key: str
    rt: str
    sent: float
    reserved: float | None  # when the sender last confirmed its lease, if it does
    done: float | None = None
    outcome: str | None = None  # None: no answer logged (the process died first)


def refresh_attempts(events: list[Event]) -> dict[str, Attempt]:
    """Every refresh request by ``process:n``, the id its ``x-soak-attempt`` header carried."""
    attempts: dict[str, Attempt] = {}
    reserved: dict[tuple[str, str], float] = {}
    for event in events:
        if event["ev"] == "reserved":
            reserved[(event["p"], event["k"])] = event["t"]
        elif event["ev"] == "refresh_sent":
            last = reserved.pop((event["p"], event["k"]), None)
            attempts[f"{event['p']}:{event['n']}"] = Attempt(
                event["p"], event["k"], event["rt"], event["t"], last
            )
        elif event["ev"] == "refresh_done" and f"{event['p']}:{event['n']}" in attempts:
            attempt = attempts[f"{event['p']}:{event['n']}"]
            attempt.done, attempt.outcome = event["t"], event["outcome"]
    return attempts


@dataclass
class Incident:
    """A reuse the mock detected: the request it rotated for, and the one it refused."""

    key: str
    rotation: Attempt | None
    rotated_at: float | None
    reuse: Attempt | None
    reused_at: float
    cause: str  # "chaos", or what went wrong

    def describe(self) -> str:
        first = _describe(self.rotation, self.rotated_at)
        again = _describe(self.reuse, self.reused_at)
        return f"{self.key} [{self.cause}]: rotated for {first}; presented again by {again}"


def _describe(attempt: Attempt | None, handled: float | None) -> str:
    if attempt is None:
        return "an unlogged request"
    took = "" if attempt.done is None else f", {attempt.outcome} at {attempt.done:.3f}"
    at_mock = "" if handled is None else f", handled by the mock at {handled:.3f}"
    return f"{attempt.process} (sent at {attempt.sent:.3f}{at_mock}{took or ', no answer'})"


def reuse_incidents(
    events: list[Event], attempts: dict[str, Attempt], chaos: Chaos
) -> list[Incident]:
    """Every reuse the mock detected, with the cause the logs show (see the module doc)."""
    rotated: dict[str, Event] = {}
    stored = {event["rt"] for event in events if event["ev"] == "put"}
    incidents = []
    for event in events:
        if event["ev"] != "mock_refresh":
            continue
        if event["verdict"] == "rotated":
            rotated.setdefault(event["rt"], event)
            continue
        if event["verdict"] != "reuse":
            continue
        winner = rotated.get(event["rt"])
        rotation = attempts.get(winner["attempt"]) if winner else None
        reuse = attempts.get(event["attempt"])
        known = reuse or rotation
        cause = _cause(rotation, winner, reuse, event, chaos, _stored_by(events, rotation))
        if cause == "presented after it was rotated" and winner["new_rt"] not in stored:
            cause = "rotated token received but never stored"
        rotated_at = winner["t"] if winner else None
        key = known.key if known else "?"
        incidents.append(Incident(key, rotation, rotated_at, reuse, event["t"], cause))
    return incidents


def _stored_by(events: list[Event], rotation: Attempt | None) -> float | None:
    """When the rotation's sender finished writing (or failing to write) its answer."""
    if rotation is None or rotation.done is None:
        return None
    ends = [
        float(event["t"])
        for event in events
        if event["ev"] in ("put", "put_failed")
        and event["p"] == rotation.process
        and event.get("k") == rotation.key
        and event["t"] >= rotation.done
    ]
    return min(ends, default=None)


def _cause(
    rotation: Attempt | None,
    winner: Event | None,
    reuse: Attempt | None,
    refused: Event,
    chaos: Chaos,
    stored: float | None,
) -> str:
    if rotation is None or winner is None or reuse is None:
        return "a request nobody logged"
    if chaos.hit(rotation.process, rotation.sent, stored):
        return "chaos"  # the rotation's answer died or waited with its frozen sender
    # Frozen after its last lease check, the sender could not stop its request.
    checked = reuse.reserved if reuse.reserved is not None else reuse.sent
    if chaos.hit(reuse.process, checked, refused["arrived"]):
        return "chaos"
    if rotation.outcome != "ok":
        return f"rotation answer lost to {rotation.outcome or 'an unlogged end'}"
    if reuse.sent < winner["t"]:
        return "sent before the rotation, handled after it"
    return "presented after it was rotated"


@dataclass
class CallCheck:
    """API calls and token requests: how many, and which failures nothing excuses."""

    counts: Counter[str]
    unexcused: list[str]
    transient: list[str]  # typed availability failures that leave the grant intact


#: Errors that say "not now" and change nothing stored: a provider answer slower than
#: the request's deadline on a saturated machine, a lock held past ``lock_timeout``.
#: The reuse, revocation and deletion checks still prove no grant suffered from them.
TRANSIENT = frozenset({"TransportError", "LockTimeout"})


def check_calls(events: list[Event], chaos: Chaos, lost_at: dict[str, float]) -> CallCheck:
    """Count calls; a failure is excused only by chaos, or by a call slower than the
    life its token had left when the manager handed it out."""
    counts: Counter[str] = Counter()
    unexcused, transient = [], []
    for event in events:
        if event["ev"] == "api" and event["result"] == "ok":
            counts["api ok"] += 1
            continue
        if event["ev"] not in ("api", "token_failed"):
            continue
        what = event.get("result") or event.get("error")
        counts[f"failed: {what}"] += 1
        if chaos.hit(event["p"], event["t0"], event["t"]):
            counts["  excused: own process frozen or killed"] += 1
        elif event["k"] in lost_at and event["t"] >= lost_at[event["k"]] and what != "wrong_user":
            counts["  excused: grant lost to chaos"] += 1
        elif what == "http_401:expired" and event["t"] - event["t1"] >= event["left"]:
            counts["  excused: call outlasted the token's remaining life"] += 1
        elif what in TRANSIENT:
            counts["  transient (bounded, grant intact)"] += 1
            transient.append(f"{event['p']} {event['k']} at {event['t']:.3f}: {what}")
        else:
            unexcused.append(f"{event['p']} {event['k']} at {event['t']:.3f}: {what}")
    return CallCheck(counts, unexcused, transient)


def premature_refreshes(events: list[Event], share: float) -> list[str]:
    """Refreshes of a token that, when last read (under the lock), had more than
    ``share`` of its granted life left: the manager refreshes only tokens that are due."""
    reads: dict[tuple[str, str | None], Event] = {}
    premature = []
    for event in events:
        if event["ev"] == "get" and event["rt"] is not None:
            reads[(event["p"], event["rt"])] = event
        elif event["ev"] == "refresh_sent":
            read = reads.get((event["p"], event["rt"]))
            if read is None or read["left"] is None:
                continue
            if read["left"] > share * read["life"] + 0.1:  # 0.1 s: the read came first
                premature.append(
                    f"{event['p']} refreshed {event['k']} with {read['left']:.2f} s "
                    f"of {read['life']:.0f} s left"
                )
    return premature


def latency(attempts: list[Attempt]) -> str:
    """Median and worst time from sending a refresh to its answer, in ms."""
    took = sorted(a.done - a.sent for a in attempts if a.done is not None)
    if not took:
        return "-"
    return f"{took[len(took) // 2] * 1000:.0f} / {took[-1] * 1000:.0f}"


def format_table(rows: Iterable[tuple[str, object]]) -> str:
    rows = list(rows)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)
