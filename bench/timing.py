"""Timing shared by the benchmarks (run as `python bench/NAME.py`, so this is importable)."""

import statistics
import time


def median_time(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
