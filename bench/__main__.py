"""Run every benchmark in turn: ``python -m bench`` (or ``make bench``).

Each prints its own table; none asserts. Absolute times on a shared machine mean
little: read the ratios, which come from variants run alternately in one process.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ("bench.bearer_overhead", []),
    ("bench.middleware_overhead", []),
    ("bench.rss", []),
    ("bench.refresh_storm", []),
    ("bench.authlib_storm", []),
    ("bench.store", []),
]


def main() -> int:
    failed = []
    for module, args in BENCHMARKS:
        print(f"\n=== python -m {module} {' '.join(args)}".rstrip(), flush=True)
        if subprocess.run([sys.executable, "-m", module, *args], check=False).returncode:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
