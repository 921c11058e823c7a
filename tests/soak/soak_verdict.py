"""Everything the soak concludes from one run, and the table it prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soak_checks import (
    Chaos,
    Event,
    check_calls,
    forked_versions,
    format_table,
    latency,
    premature_refreshes,
    refresh_attempts,
    reuse_incidents,
    stale_reads,
)
from soak_harness import Fleet

from whop_oauth.testing import MockWhop


@dataclass
class Limits:
    """What the token lifetime allows: ``share`` as in ``TokenManager``'s docstring."""

    lifetime: float
    share: float
    slack: int
    seconds: float  # from the grants' creation to the last process's exit

    @property
    def most_refreshes(self) -> int:
        return int(self.seconds / (self.lifetime * (1 - self.share))) + 1 + self.slack


@dataclass
class Verdict:
    table: list[tuple[str, object]]
    crashed: list[str]
    stale: list[str]
    forks: list[str]
    unexplained_reuse: list[str]
    reuse_not_logged: int  # reuse detections the mock counted but did not log
    revoked_unexplained: list[str]
    deleted_unexplained: list[str]
    failed_calls: list[str]
    transient_calls: list[str]
    premature: list[str]
    too_many_refreshes: dict[str, int]
    never_refreshed: list[str]
    api_calls: int

    def report(self) -> str:
        return format_table(self.table)

    def details(self) -> list[str]:
        lists = (self.unexplained_reuse, self.stale, self.forks, self.failed_calls)
        lists += (self.crashed, self.premature, self.revoked_unexplained)
        return [line for found in lists for line in found[:10]]


def judge(events: list[Event], mock: MockWhop, fleet: Fleet, limits: Limits) -> Verdict:
    chaos = Chaos.from_events(events, events[-1]["t"])
    attempts = refresh_attempts(events)
    incidents = reuse_incidents(events, attempts, chaos)
    by_chaos = [i for i in incidents if i.cause == "chaos"]
    lost_at: dict[str, float] = {}  # grant -> when chaos made the mock revoke it
    for incident in by_chaos:
        lost_at[incident.key] = min(incident.reused_at, lost_at.get(incident.key, float("inf")))
    calls = check_calls(events, chaos, lost_at)
    stats = mock.stats
    grants = {f"{g.company_id}/{g.user_id}": g for g in mock.grants}
    revoked = sorted(name for name, g in grants.items() if g.revoked)
    deleted = sorted({e["k"] for e in events if e["ev"] == "delete" and e["deleted"]})
    rotations = sorted(g.rotations for g in grants.values())
    bound = limits.most_refreshes
    jobs = [e for e in events if e["ev"] == "job_exited"]
    crashed = [f"{e['job']}: exit {e['code']}" for e in jobs if e["code"] != 0]
    crashed += [
        f"{name}: exit {code}"
        for name, code in fleet.exit_codes.items()
        if name not in chaos.kills and code != 0
    ]
    stale, forks = stale_reads(events), forked_versions(events)
    premature = premature_refreshes(events, limits.share)
    table: list[tuple[str, Any]] = [
        ("seconds, grants to last exit", f"{limits.seconds:.1f}"),
        ("refreshes (mock rotations)", stats.token_refresh),
        (
            "  per grant min / median / max",
            f"{rotations[0]} / {rotations[len(rotations) // 2]} / {rotations[-1]}",
        ),
        ("  allowed per grant", f"1..{bound}"),
        ("  of a token not yet due", len(premature)),
        ("  answered in ms, median / max", latency(list(attempts.values()))),
        ("reuse detections (mock)", stats.refresh_reuse_detected),
        *sorted(_causes(incidents).items()),
        ("invalid_grant answers (mock)", stats.invalid_grant),
        ("grants revoked / deleted", f"{len(revoked)} / {len(deleted)}"),
        ("stale reads / forked versions", f"{len(stale)} / {len(forks)}"),
        *sorted(fleet.counts.items()),
        ("jobs run (not started: 4 running)", f"{len(jobs)} ({_count(events, 'job_skipped')})"),
        ("crashed processes", len(crashed)),
        ("API calls answered 200 (mock)", stats.api_calls),
        *sorted(calls.counts.items()),
    ]
    return Verdict(
        table=table,
        crashed=crashed,
        stale=stale,
        forks=forks,
        unexplained_reuse=[i.describe() for i in incidents if i.cause != "chaos"],
        reuse_not_logged=stats.refresh_reuse_detected - len(incidents),
        revoked_unexplained=[name for name in revoked if name not in lost_at],
        deleted_unexplained=[name for name in deleted if name not in lost_at],
        failed_calls=calls.unexcused,
        transient_calls=calls.transient,
        premature=premature,
        too_many_refreshes={n: g.rotations for n, g in grants.items() if g.rotations > bound},
        never_refreshed=[name for name, g in grants.items() if g.rotations < 1],
        api_calls=stats.api_calls,
    )


def _causes(incidents: list[Any]) -> dict[str, int]:
    causes: dict[str, int] = {}
    for incident in incidents:
        label = f"  cause: {incident.cause}"
        causes[label] = causes.get(label, 0) + 1
    return causes


def _count(events: list[Event], name: str) -> int:
    return sum(1 for event in events if event["ev"] == name)
