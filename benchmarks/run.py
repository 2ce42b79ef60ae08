"""Benchmarks of signal_mgmt on PostgreSQL, each next to a raw psycopg baseline of the same run.

    python benchmarks/run.py [--quick] [--json PATH] [--database-url URL] [--repeat N]

A fresh database is created next to ``--database-url`` (default: the local
``postgres`` database), migrated, and dropped at the end. Every figure is the
median of ``--repeat`` runs (3; 1 with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines
import library
from database import BenchDatabase, bench_database, reset
from measure import Figure, median_figures

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Sizes:
    transactions: int
    fanout_transactions: int
    drain_rows: int
    latency_events: int

    @classmethod
    def for_run(cls, quick: bool) -> Sizes:
        if quick:
            return cls(
                transactions=500, fanout_transactions=50, drain_rows=20_000, latency_events=1000
            )
        return cls(
            transactions=3000, fanout_transactions=300, drain_rows=200_000, latency_events=5000
        )


@dataclass(frozen=True)
class Comparison:
    """A library figure against its same-run baseline, and the issue's target for the ratio."""

    benchmark: str
    library: Figure
    baseline: Figure
    target: str
    ratio_target: float | None

    @property
    def ratio(self) -> float:
        if self.library.higher_is_better:
            return self.library.value / self.baseline.value
        return self.baseline.value / self.library.value

    @property
    def met(self) -> bool | None:
        return None if self.ratio_target is None else self.ratio >= self.ratio_target


Benchmark = Callable[[BenchDatabase, Sizes], list[Comparison]]


def bench_domain_event(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    reset(database, "raw.bench_domain", "raw.outbox", "public.bench_domain", "public.outbox")
    raw = baselines.domain_event_tx(database, sizes.transactions)
    ours = library.domain_event_tx(database, sizes.transactions)
    return [
        Comparison(
            "1 domain row + 1 event / tx",
            Figure("emit() in transaction()", ours, "tx/s"),
            Figure("raw INSERT+INSERT+COMMIT", raw, "tx/s"),
            ">= 0.7x",
            0.7,
        )
    ]


def bench_relay_drain(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    measured: dict[tuple[str, int], float] = {}
    for drainers in (1, 2):
        reset(database, "raw.outbox")
        measured["raw", drainers] = baselines.skip_locked_drain(
            database, sizes.drain_rows, drainers
        )
        reset(database, "public.outbox")
        measured["lib", drainers] = library.relay_drain(database, sizes.drain_rows, drainers)
    rows = f"{sizes.drain_rows:,} rows"
    return [
        Comparison(
            f"relay drain {rows}, 1 relay",
            Figure("OutboxRelay.run_once, no-op publisher", measured["lib", 1], "rows/s"),
            Figure("raw SKIP LOCKED batch-500 claim+update", measured["raw", 1], "rows/s"),
            ">= 0.6x",
            0.6,
        ),
        Comparison(
            f"relay drain {rows}, 2 relays (per-key order checked)",
            Figure("2 OutboxRelay processes", measured["lib", 2], "rows/s"),
            Figure("raw, 2 drainers (no per-key order)", measured["raw", 2], "rows/s"),
            "-",
            None,
        ),
        Comparison(
            "relay drain: 2 relays vs 1 relay",
            Figure("2 relays", measured["lib", 2], "rows/s"),
            Figure("1 relay", measured["lib", 1], "rows/s"),
            ">= 1.5x",
            1.5,
        ),
    ]


BENCHMARKS: list[Benchmark] = [bench_domain_event, bench_relay_drain]


def run_all(database: BenchDatabase, sizes: Sizes, repeat: int) -> list[Comparison]:
    comparisons: list[Comparison] = []
    for benchmark in BENCHMARKS:
        runs = [benchmark(database, sizes) for _ in range(repeat)]
        for i, first in enumerate(runs[0]):
            ours = median_figures([[run[i].library] for run in runs])[0]
            raw = median_figures([[run[i].baseline] for run in runs])[0]
            comparisons.append(
                Comparison(first.benchmark, ours, raw, first.target, first.ratio_target)
            )
    return comparisons


def report(comparisons: list[Comparison], console: Console) -> None:
    table = Table(title="signal_mgmt benchmarks (PostgreSQL; ratio = library vs same-run raw)")
    for column in ("benchmark", "library", "baseline", "ratio", "target", "met"):
        table.add_column(column)
    for c in comparisons:
        met = {True: "[green]yes", False: "[red]NO", None: "-"}[c.met]
        table.add_row(
            c.benchmark,
            f"{c.library.value:,.2f} {c.library.unit}  ({c.library.name})",
            f"{c.baseline.value:,.2f} {c.baseline.unit}  ({c.baseline.name})",
            f"{c.ratio:.2f}x",
            c.target,
            met,
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL admin URL")
    parser.add_argument("--repeat", type=int, help="runs per benchmark (median is reported)")
    args = parser.parse_args(argv)
    sizes = Sizes.for_run(args.quick)
    repeat = args.repeat or (1 if args.quick else 3)
    console = Console()
    started = datetime.now(UTC)
    with bench_database(args.database_url) as database:
        comparisons = run_all(database, sizes, repeat)
    report(comparisons, console)
    if args.json:
        document = {
            "started_at": started.isoformat(),
            "machine": platform.platform(),
            "python": platform.python_version(),
            "quick": args.quick,
            "repeat": repeat,
            "sizes": asdict(sizes),
            "results": [{**asdict(c), "ratio": c.ratio, "met": c.met} for c in comparisons],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
