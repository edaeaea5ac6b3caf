"""Shared timing helper of the PyTorch baseline scripts in this folder."""
import statistics
import time


def median_ms(fn, runs=20, warmup=3):
    """Median wall time of `fn()` in milliseconds over `runs` runs after
    `warmup` unmeasured ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)
