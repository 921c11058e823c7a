"""Calling code from many threads at once, as plain Starlette endpoints and FastAPI
dependencies do (they run in the threadpool)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable


def errors_in_threads(work: Callable[[int], None], threads: int = 8) -> list[BaseException]:
    """Run ``work(thread_index)`` in ``threads`` threads at once; what they raised.

    The interpreter switches threads as often as it can meanwhile, so two threads
    interleave inside any step that is not atomic.
    """
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # collected for the caller to assert on
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        started = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return errors
