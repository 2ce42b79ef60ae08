"""Timing helpers shared by the baselines and the library side."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured number: what, how much, in which unit, and whether bigger is better."""

    name: str
    value: float
    unit: str
    higher_is_better: bool = True


Work = Callable[[int], None]
"""One unit of benchmarked work; ``i`` numbers the call (for unique keys)."""


def interleaved_rates(workers: Mapping[str, Work], count: int, chunk: int = 50) -> dict[str, float]:
    """Calls per second of each worker, ``count`` calls each, run in alternating chunks.

    On a shared machine the load drifts within seconds; alternating the library and
    its baseline every ``chunk`` calls gives both the same drift.
    """
    spent = dict.fromkeys(workers, 0.0)
    for start in range(0, count, chunk):
        for name, work in workers.items():
            started = time.perf_counter()
            for i in range(start, min(count, start + chunk)):
                work(i)
            spent[name] += time.perf_counter() - started
    return {name: count / seconds for name, seconds in spent.items()}


def percentiles_ms(samples_ns: Sequence[int], prefix: str) -> list[Figure]:
    """p50, p99 and max of latencies given in nanoseconds, as milliseconds."""
    ordered = sorted(samples_ns)
    if not ordered:
        raise ValueError(f"{prefix}: no latency samples")

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return [
        Figure(f"{prefix} p50", at(0.50), "ms", higher_is_better=False),
        Figure(f"{prefix} p99", at(0.99), "ms", higher_is_better=False),
        Figure(f"{prefix} max", ordered[-1] / 1e6, "ms", higher_is_better=False),
    ]


Sample = tuple[int, int]
"""One latency measurement: (the instant it started, CLOCK_MONOTONIC ns; the latency, ns)."""


def by_minute(samples: Sequence[Sample]) -> list[list[int]]:
    """The latencies of each minute, counted from the first sample's start."""
    if not samples:
        return []
    first = min(start for start, _ in samples)
    minutes: dict[int, list[int]] = {}
    for start, latency in samples:
        minutes.setdefault((start - first) // 60_000_000_000, []).append(latency)
    return [minutes[minute] for minute in sorted(minutes)]


def latency_figures(samples: Sequence[Sample], prefix: str) -> list[Figure]:
    """p50, p99, max, and the p99 of the worst minute (every minute's p99 is printed)."""
    figures = percentiles_ms([latency for _, latency in samples], prefix)
    per_minute = [percentiles_ms(minute, prefix)[1].value for minute in by_minute(samples)]
    print(
        f"{prefix}: p99 per minute " + ", ".join(f"{p99:.2f}" for p99 in per_minute) + " ms",
        file=sys.stderr,
    )
    return [*figures, Figure(f"{prefix} p99 worst minute", max(per_minute), "ms", False)]


def paced(count: int, per_second: float, work: Callable[[int], None]) -> None:
    """Call ``work(i)`` ``count`` times at a steady rate (busy-free: sleeps until each slot)."""
    interval = 1.0 / per_second
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work(i)


def median_figures(runs: Sequence[Sequence[Figure]]) -> list[Figure]:
    """The median of each figure over repeated runs (figures matched by position)."""
    return [
        Figure(
            same[0].name,
            statistics.median(f.value for f in same),
            same[0].unit,
            same[0].higher_is_better,
        )
        for same in zip(*runs, strict=True)
    ]
