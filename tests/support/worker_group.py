"""OS processes that a test starts together: each prints ``ready``, waits for ``go`` on
stdin (so that all of them start at once), and prints one JSON line with its result."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any


class WorkerGroup:
    """``count`` copies of ``args``; ``kill_all`` stops whatever is left (by PID)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], count: int) -> None:
        self.processes = [
            subprocess.Popen(
                list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
            )
            for _ in range(count)
        ]

    def wait_ready(self) -> None:
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip() == "ready", f"a worker failed to start: {line!r}"

    def go(self, processes: list[subprocess.Popen[str]] | None = None) -> None:
        for process in processes or self.processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()

    def outputs(self, processes: list[subprocess.Popen[str]] | None = None) -> list[Any]:
        """Each process's last line, parsed, once it has exited successfully."""
        out = []
        for process in processes or self.processes:
            stdout, _ = process.communicate(timeout=60)
            assert process.returncode == 0, f"a worker failed: {stdout[-500:]!r}"
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
