"""``median_interval``: the 95 % interval the uvicorn tables print beside each ratio."""

from __future__ import annotations

import math
import statistics

from bench._harness import interval_text, median_interval
from hypothesis import given
from hypothesis import strategies as st


def coverage(n: int, k: int) -> float:
    """P(x_(k) <= median <= x_(n+1-k)) for n values from any continuous distribution."""
    outside = sum(math.comb(n, i) for i in range(k)) / 2**n
    return 1 - 2 * outside


def test_published_order_statistics() -> None:
    # The 95 % ranks of the usual tables: (4, 12) of 15, (14, 27) of 40, (1, 6) of 6.
    assert median_interval(range(1, 16)) == (4, 12)
    assert median_interval(range(1, 41)) == (14, 27)
    assert median_interval(range(1, 7)) == (1, 6)


def test_too_few_rounds_give_no_interval() -> None:
    low, high = median_interval([1.0, 1.1, 0.9, 1.2, 1.05])
    assert math.isnan(low)
    assert math.isnan(high)


def test_the_tables_print_the_interval_or_say_there_is_none() -> None:
    assert interval_text([1.0, 1.02, 0.98, 1.01, 0.99, 1.03]) == "0.980-1.030x"
    assert interval_text([1.0, 1.1]) == "none"


def test_the_tightest_interval_that_keeps_the_confidence() -> None:
    for n in range(6, 80):
        low, _ = median_interval(range(1, n + 1))
        k = int(low)
        assert coverage(n, k) >= 0.95
        assert coverage(n, k + 1) < 0.95, n


@given(st.lists(st.floats(0.5, 2.0, allow_nan=False), min_size=6, max_size=60))
def test_holds_the_sample_median_and_is_made_of_rounds(values: list[float]) -> None:
    low, high = median_interval(values)
    assert low <= statistics.median(values) <= high
    assert low in values
    assert high in values
