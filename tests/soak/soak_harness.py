"""The soak's process fleet: long-lived workers, a job launcher, and the chaos done to them.

Every signal the harness sends is logged (with the same clock as the processes'
logs), so the checks can tell a failure the chaos explains from one it does not.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soak_probes import EventLog

PROCESS = str(Path(__file__).with_name("soak_process.py"))
#: Access tokens live this long: short, so that a minute sees many refreshes.
ACCESS_TOKEN_TTL = 3
#: (tenant, user) pairs with a grant: users 08-11 signed in under both tenants.
GRANTS = [("biz_alpha", f"user_{n:02d}") for n in range(12)] + [
    ("biz_beta", f"user_{n:02d}") for n in range(8, 20)
]


@dataclass(frozen=True)
class Timing:
    """How long the soak runs and how hard the chaos hits."""

    duration: float
    warm_up: float = 3.0  #: no chaos before this
    cool_down: float = 3.0  #: nor in the last seconds
    chaos_every: tuple[float, float] = (2.5, 4.5)
    stop_for_leases: tuple[float, float] = (1.5, 2.5)  #: SIGSTOP for this many leases
    kill_share: float = 0.5  #: of chaos events; the rest are SIGSTOP/SIGCONT


class Fleet:
    """Starts, freezes, kills and stops the soak's processes, logging each act."""

    def __init__(self, folder: Path, config: dict[str, Any], env: dict[str, str]) -> None:
        self.logs = folder / "logs"
        (self.logs / "jobs").mkdir(parents=True)
        config = {**config, "logs": str(self.logs)}
        self.config = config
        self._config_path = folder / "config.json"
        self._config_path.write_text(json.dumps(config))
        self._env = env
        self._stderr = (folder / "stderr.txt").open("ab")
        self.stderr_path = folder / "stderr.txt"
        self.log = EventLog(self.logs / "harness.jsonl", "harness")
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.launcher: subprocess.Popen[bytes] | None = None
        self.frozen: dict[str, float] = {}  # worker -> when to SIGCONT it
        self.counts: Counter[str] = Counter()
        self.exit_codes: dict[str, int] = {}
        self._started = 0

    def _spawn(self, mode: str, name: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, PROCESS, mode, name, str(self._config_path)],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self.log.write("spawn", target=name, pid=process.pid)
        return process

    def start_worker(self) -> None:
        self._started += 1
        name = f"w{self._started}"
        self.workers[name] = self._spawn("worker", name)
        self.counts["workers started"] += 1

    def start_jobs(self) -> None:
        self.launcher = self._spawn("jobs", "jobs")

    def ready(self, name: str) -> bool:
        """Whether the process has its SIGTERM handler and store in place (see its log)."""
        path = self.logs / f"{name}.jsonl"
        return path.exists() and '"ev":"ready"' in path.read_text(encoding="utf-8")

    def wait_ready(self, names: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.ready(name) for name in names):
            if time.monotonic() > deadline:
                raise RuntimeError(f"soak processes did not start: {self.stderr_path}")
            time.sleep(0.05)

    def _signal(self, name: str, signum: signal.Signals) -> None:
        self.log.write(signum.name.lower(), target=name)
        os.kill(self.workers[name].pid, signum)

    def strike(self, rng: random.Random, timing: Timing) -> None:
        """Freeze a running worker for longer than the lock lease, or kill one and replace it."""
        running = [n for n, p in self.workers.items() if n not in self.frozen and p.poll() is None]
        if not running:
            return
        target = rng.choice(running)
        if rng.random() < timing.kill_share:
            self._signal(target, signal.SIGKILL)
            self.workers[target].wait()
            self.exit_codes[target] = self.workers.pop(target).returncode
            self.counts["workers killed (SIGKILL)"] += 1
            self.start_worker()
            return
        frozen_for = self.config["lease"] * rng.uniform(*timing.stop_for_leases)
        self._signal(target, signal.SIGSTOP)
        self.frozen[target] = time.monotonic() + frozen_for
        self.counts["workers frozen (SIGSTOP > lease)"] += 1

    def thaw_due(self, *, everyone: bool = False) -> None:
        now = time.monotonic()
        for name, due in list(self.frozen.items()):
            if everyone or now >= due:
                self._signal(name, signal.SIGCONT)
                del self.frozen[name]

    def stop(self) -> None:
        """SIGTERM everyone (after thawing); a process that does not exit in time is killed."""
        self.thaw_due(everyone=True)
        members = dict(self.workers)
        if self.launcher is not None:
            members["jobs"] = self.launcher
        self.wait_ready(list(members))  # SIGTERM before its handler would just kill it
        for name, process in members.items():
            self.log.write("sigterm", target=name)
            process.terminate()
        for name, process in members.items():
            try:
                self.exit_codes[name] = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.log.write("hung", target=name)
                self.counts["processes hung at shutdown"] += 1
                if name != "jobs":
                    process.send_signal(signal.SIGUSR1)  # it prints its tasks' stacks
                    time.sleep(2)
                process.kill()
                self.exit_codes[name] = process.wait()
        self.log.write("stopped")
        self._stderr.close()
        self.log.close()

    def kill_all(self) -> None:
        """Last resort at the end of a test that failed half-way."""
        for process in [*self.workers.values(), *filter(None, [self.launcher])]:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()


async def run(fleet: Fleet, timing: Timing, rng: random.Random, workers: int) -> None:
    """Start the fleet, let it work for ``timing.duration`` seconds under chaos, stop it."""
    for _ in range(workers):
        fleet.start_worker()
    fleet.start_jobs()
    await asyncio.to_thread(fleet.wait_ready, [*fleet.workers, "jobs"])
    began = time.monotonic()
    end = began + timing.duration
    next_strike = began + timing.warm_up
    while (now := time.monotonic()) < end:
        fleet.thaw_due()
        if now >= next_strike and now < end - timing.cool_down:
            fleet.strike(rng, timing)
            next_strike = now + rng.uniform(*timing.chaos_every)
        await asyncio.sleep(0.02)
    await asyncio.to_thread(fleet.stop)
