"""Run the same job in several processes that start together; time the whole.

Each job is ``setup(*args) -> work`` (module-level, so it pickles): setup runs
before the starting line (connecting, importing), ``work()`` after it. Clocks
are CLOCK_MONOTONIC, shared by all processes on Linux, so the spans compare.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

Setup = Callable[..., Callable[[], Any]]


def _child(setup: Setup, args: Sequence[Any], barrier: Barrier, results: Any) -> None:
    work = setup(*args)
    barrier.wait()
    started = time.monotonic_ns()
    outcome = work()
    results.put((started, time.monotonic_ns(), outcome))


def run_together(setup: Setup, args: Sequence[Any], processes: int) -> tuple[float, list[Any]]:
    """Seconds from the first start to the last finish, and each process's result."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    children = [
        context.Process(target=_child, args=(setup, args, barrier, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    collected: list[Any] = []
    while len(collected) < processes:
        try:
            collected.append(results.get(timeout=1.0))
        except queue.Empty:
            failed = [c.exitcode for c in children if c.exitcode not in (None, 0)]
            if failed:
                for child in children:
                    child.kill()
                raise RuntimeError(f"benchmark process failed (exit codes {failed})") from None
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"benchmark process failed with exit code {child.exitcode}")
    elapsed = (max(c[1] for c in collected) - min(c[0] for c in collected)) / 1e9
    return elapsed, [c[2] for c in collected]
