"""Benchmarks of signal_mgmt on PostgreSQL, each next to a raw psycopg baseline of the same run.

    python benchmarks/run.py [--quick] [--json PATH] [--database-url URL] [--repeat N]
                             [--minutes M] [--only N ...]

By default the run starts a private PostgreSQL 15 cluster of its own (``initdb``
into a temporary folder, a free loopback port, the server's default settings:
fsync and autovacuum on), named in the output, and removes it at the end; with
``--database-url`` it uses that server instead. A fresh database is created,
migrated, and dropped at the end. Every figure is the median of ``--repeat``
runs (3; 1 with ``--quick``); benchmark 7 (the stream, ``--minutes``, 10 by
default) and 8 (takeover) run once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))  # pg_cluster

import baselines
import exits
import library
from database import BenchDatabase, bench_database, reset
from measure import (
    Figure,
    interleaved_rates,
    latency_figures,
    median_figures,
    percentiles_ms,
)
from statements import per_call

from pg_cluster import PgCluster

SERVER_DEFAULTS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
"""pg_cluster's test cluster turns these off; a benchmark runs with the server's defaults."""


@dataclass(frozen=True)
class Sizes:
    transactions: int
    fanout_transactions: int
    audience: int
    drain_rows: int
    latency_events: int
    latency_rate: float
    open_trades: int
    symbols: int
    detection_ticks: int
    naive_ticks: int
    exit_trades: int
    stream_minutes: float = 10.0
    takeover_rounds: int = 5

    @classmethod
    def for_run(cls, quick: bool) -> Sizes:
        common = {"audience": 100, "latency_rate": 500.0, "open_trades": 10_000, "symbols": 500}
        if quick:
            return cls(
                transactions=500,
                fanout_transactions=50,
                drain_rows=20_000,
                latency_events=1000,
                detection_ticks=50_000,
                naive_ticks=500,
                exit_trades=200,
                **common,  # type: ignore[arg-type]
            )
        return cls(
            transactions=3000,
            fanout_transactions=300,
            drain_rows=200_000,
            latency_events=5000,
            detection_ticks=200_000,
            naive_ticks=2000,
            exit_trades=1000,
            **common,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Comparison:
    """A library figure, its same-run baseline (if any), and the issue's target.

    The target is a ratio to the baseline (``ratio_target``) or a bound on the
    library figure itself (``at_most`` / ``at_least``).
    """

    benchmark: str
    library: Figure
    baseline: Figure | None
    target: str
    ratio_target: float | None = None
    at_most: float | None = None
    at_least: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        if self.library.higher_is_better:
            return self.library.value / self.baseline.value
        return self.baseline.value / self.library.value

    @property
    def met(self) -> bool | None:
        if self.ratio_target is not None and self.ratio is not None:
            return self.ratio >= self.ratio_target
        if self.at_most is not None:
            return self.library.value <= self.at_most
        if self.at_least is not None:
            return self.library.value >= self.at_least
        return None


Benchmark = Callable[[BenchDatabase, Sizes], list[Comparison]]


def bench_domain_event(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    reset(database, "raw.bench_domain", "raw.outbox", "public.bench_domain", "public.outbox")
    with (
        baselines.domain_event_worker(database) as raw_work,
        baselines.single_insert_worker(database) as single_work,
        library.domain_event_worker(database) as our_work,
    ):
        rates = interleaved_rates(
            {"raw": raw_work, "single": single_work, "ours": our_work}, sizes.transactions
        )
        statements = per_call(lambda: our_work(sizes.transactions))
    raw, single, ours = rates["raw"], rates["single"], rates["ours"]
    return [
        Comparison(
            "1. one domain row + one event per tx",
            Figure("emit() in transaction()", ours, "tx/s"),
            Figure("raw INSERT+INSERT+COMMIT (same rows)", raw, "tx/s"),
            ">= 0.8x",
            ratio_target=0.8,
        ),
        Comparison(
            "1. statements per transaction",
            Figure("emit() in transaction()", statements, "statements", False),
            Figure("raw INSERT+INSERT", 2, "statements", False),
            "-",
        ),
        Comparison(
            "1. (reference) against a raw one-row tx",
            Figure("emit() in transaction()", ours, "tx/s"),
            Figure("raw INSERT+COMMIT, no event", single, "tx/s"),
            "-",
        ),
    ]


def bench_signal_fanout(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    reset(database, "raw.signal_deliveries", "raw.signals", "raw.outbox", "public.outbox")
    reset(database, "public.signal_deliveries", "public.signals")
    audience = library.setup_audience(database, sizes.audience)
    with (
        baselines.signal_fanout_worker(database, audience) as raw_work,
        library.signal_fanout_worker(database, len(audience)) as our_work,
    ):
        rates = interleaved_rates(
            {"raw": raw_work, "ours": our_work}, sizes.fanout_transactions, 10
        )
        statements = per_call(lambda: our_work(sizes.fanout_transactions))
    raw, ours = rates["raw"], rates["ours"]
    return [
        Comparison(
            f"2. signal + {sizes.audience} deliveries + {sizes.audience + 1} events per tx",
            Figure("SignalService.publish", ours, "tx/s"),
            Figure("raw multi-row VALUES", raw, "tx/s"),
            ">= 0.8x",
            ratio_target=0.8,
        ),
        Comparison(
            "2. statements per publish",
            Figure("SignalService.publish", statements, "statements", False),
            Figure("raw INSERT signal, deliveries, outbox", 3, "statements", False),
            "-",
        ),
    ]


def bench_relay_drain(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    measured: dict[tuple[str, int], float] = {}
    violations = []
    for drainers in (1, 2):
        reset(database, "raw.outbox")
        measured["raw", drainers] = baselines.skip_locked_drain(
            database, sizes.drain_rows, drainers
        )
        reset(database, "public.outbox")
        drained = library.relay_drain(database, sizes.drain_rows, drainers)
        measured["lib", drainers] = drained.rows_per_second
        violations += drained.order_violations
    for line in violations[:20]:
        print(f"PER-KEY ORDER VIOLATION: {line}", file=sys.stderr)
    rows = f"{sizes.drain_rows:,} rows"
    return [
        Comparison(
            f"3. relay drain {rows}, 1 relay",
            Figure("OutboxRelay.run_once, no-op publisher", measured["lib", 1], "rows/s"),
            Figure("raw SKIP LOCKED batch-500 claim+update", measured["raw", 1], "rows/s"),
            ">= 0.6x",
            ratio_target=0.6,
        ),
        Comparison(
            f"3. relay drain {rows}, 2 relays (per-key order checked)",
            Figure("2 OutboxRelay processes", measured["lib", 2], "rows/s"),
            Figure("raw, 2 drainers (no per-key order)", measured["raw", 2], "rows/s"),
            "-",
        ),
        Comparison(
            "3. relay drain: events published after a later event of their key",
            Figure("1 + 2 relays", len(violations), "events", higher_is_better=False),
            None,
            "0",
            at_most=0,
        ),
        Comparison(
            "3. relay drain: 2 relays vs 1 relay",
            Figure("2 relays", measured["lib", 2], "rows/s"),
            Figure("1 relay", measured["lib", 1], "rows/s"),
            ">= 1.5x",
            ratio_target=1.5,
        ),
    ]


def bench_publish_latency(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    count, per_second = sizes.latency_events, sizes.latency_rate
    reset(database, "raw.outbox")
    raw = latency_figures(baselines.notify_latency(database, count, per_second), "raw")
    comparisons = []
    for label, separate in (("same process", False), ("other process, NOTIFY", True)):
        reset(database, "public.outbox")
        ours = latency_figures(
            library.publish_latency(database, count, per_second, separate), "RelayThread"
        )
        for figure, baseline, bound in zip(ours, raw, (1.0, 3.0, 50.0, 3.0), strict=True):
            comparisons.append(
                Comparison(
                    f"4. commit->publish at {per_second:g}/s, {label}: {_statistic(figure)}",
                    figure,
                    Figure(
                        f"raw LISTEN/NOTIFY wake {_statistic(baseline)}",
                        baseline.value,
                        "ms",
                        False,
                    ),
                    f"< {bound:g} ms",
                    at_most=bound,
                )
            )
    return comparisons


def _statistic(figure: Figure) -> str:
    """ "p99" of "raw p99", "p99 worst minute" of "tick->APPROVED p99 worst minute"."""
    return figure.name.split(" ", 1)[1]


def bench_exit_detection(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    indexed, naive = exits.detection_rates(
        sizes.open_trades, sizes.symbols, sizes.detection_ticks, sizes.naive_ticks
    )
    title = f"5. exit detection, {sizes.open_trades:,} open trades / {sizes.symbols} symbols"
    return [
        Comparison(
            f"{title}: indexed vs naive",
            Figure("ExitDetector.on_tick", indexed, "ticks/s"),
            Figure("scan every open trade", naive, "ticks/s"),
            ">= 100x",
            ratio_target=100,
        ),
        Comparison(
            f"{title}: throughput",
            Figure("ExitDetector.on_tick", indexed, "ticks/s"),
            None,
            ">= 400k ticks/s",
            at_least=400_000,
        ),
    ]


def bench_tick_to_exit(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    # user_brokers cascades to subscriptions, deliveries, intents, trades and exits
    reset(database, "public.user_brokers", "public.signals", "public.outbox")
    measured = exits.tick_to_approved_exit(database, sizes.exit_trades)
    figures = latency_figures(measured.samples, "tick->APPROVED")
    title = f"6. tick -> committed APPROVED exit intent ({sizes.exit_trades} trades)"
    return [
        *(
            Comparison(
                f"{title}: {_statistic(figure)}",
                figure,
                None,
                "p99 < 3 ms" if "p99" in figure.name else "-",
                at_most=3.0 if "p99" in figure.name else None,
            )
            for figure in figures
        ),
        Comparison(
            "6. statements per on_exit_detected (in its transaction)",
            Figure("ExitIntentService.on_exit_detected", measured.statements, "statements", False),
            None,
            "-",
        ),
    ]


def bench_latency_stream(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    rate = sizes.latency_rate
    reset(database, "raw.outbox")
    wakes = baselines.notify_latency(database, sizes.latency_events, rate)
    raw = percentiles_ms([latency for _, latency in wakes], "raw")
    reset(database, "public.outbox")
    stream = library.latency_stream(database, sizes.stream_minutes * 60, rate)
    print(
        f"7. {len(stream.samples)} events at {stream.rate:.0f}/s reached (target {rate:g}/s);"
        f" outbox table afterwards: {stream.table}",
        file=sys.stderr,
    )
    minutes: dict[int, list[int]] = {}
    for committed_at, latency in stream.samples:
        minutes.setdefault(int(committed_at // 60_000_000_000), []).append(latency)
    comparisons = []
    for minute, latencies in sorted(minutes.items()):
        figures = percentiles_ms(latencies, f"minute {minute + 1}")
        for figure, baseline, bound in zip(figures, raw, (1.0, 3.0, None), strict=True):
            comparisons.append(
                Comparison(
                    f"7. stream {rate:g}/s, other process, NOTIFY: {figure.name}",
                    figure,
                    Figure(f"raw LISTEN/NOTIFY wake {baseline.name.split()[-1]}",
                           baseline.value, "ms", False),
                    "-" if bound is None else f"< {bound:g} ms",
                    at_most=bound,
                )
            )  # fmt: skip
    return comparisons


def bench_takeover(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    reset(database, "public.outbox")
    ours = library.takeover_after_kill(database, sizes.takeover_rounds)
    raw = baselines.lock_release_after_kill(database, sizes.takeover_rounds)
    return [
        Comparison(
            f"8. takeover after SIGKILL ({sizes.takeover_rounds} rounds): {name}",
            Figure(f"RelayThread (poll 1 s) publishes {name}", pick(ours), "s", False),
            Figure(f"raw: a peer holds the dead session's lock {name}", pick(raw), "s", False),
            "< 2 s",
            at_most=2.0,
        )
        for name, pick in (("median", statistics.median), ("max", max))
    ]


def bench_writers_of_one_key(database: BenchDatabase, sizes: Sizes) -> list[Comparison]:
    writers, count = 4, sizes.transactions // 4
    reset(database, "public.outbox")
    shared = library.keyed_writers(database, writers, count, one_key=True)
    reset(database, "public.outbox")
    separate = library.keyed_writers(database, writers, count, one_key=False)
    return [
        Comparison(
            f"9. {writers} writer processes, one-event transactions: one key vs one key each",
            Figure("all on one key (they queue on its lock)", shared, "tx/s"),
            Figure("each on its own key", separate, "tx/s"),
            "-",
        )
    ]


BENCHMARKS: list[Benchmark] = [
    bench_domain_event,
    bench_signal_fanout,
    bench_relay_drain,
    bench_publish_latency,
    bench_exit_detection,
    bench_tick_to_exit,
    bench_latency_stream,
    bench_takeover,
    bench_writers_of_one_key,
]

RUN_ONCE = {bench_latency_stream, bench_takeover}
"""Long (the stream) or made of rounds already (takeover): not repeated."""


def run_all(
    database: BenchDatabase, sizes: Sizes, repeat: int, only: list[int] | None
) -> list[Comparison]:
    comparisons: list[Comparison] = []
    for number, benchmark in enumerate(BENCHMARKS, 1):
        if only and number not in only:
            continue
        times = 1 if benchmark in RUN_ONCE else repeat
        runs = [benchmark(database, sizes) for _ in range(times)]
        for i, first in enumerate(runs[0]):
            ours = median_figures([[run[i].library] for run in runs])[0]
            raw = None
            if first.baseline is not None:
                raw = median_figures([[run[i].baseline for run in runs]])[0]
            comparisons.append(replace(first, library=ours, baseline=raw))
        for done in comparisons[-len(runs[0]) :]:  # as they come: a long run shows progress
            print(f"{done.benchmark}: {_figure(done.library)}", file=sys.stderr)
    return comparisons


def server_facts(database: BenchDatabase) -> str:
    names = ("server_version", "fsync", "synchronous_commit", "autovacuum", "shared_buffers")
    with database.connect(autocommit=True) as conn:
        version, fsync, commit, autovacuum, buffers = (
            str(conn.execute(f"SHOW {name}").fetchall()[0][0]) for name in names
        )
    return (
        f"PostgreSQL {version} (fsync {fsync}, synchronous_commit {commit},"
        f" autovacuum {autovacuum}, shared_buffers {buffers})"
    )


def _figure(figure: Figure) -> str:
    return f"{figure.value:,.2f} {figure.unit}  ({figure.name})"


def report(comparisons: list[Comparison], console: Console) -> None:
    table = Table(title="signal_mgmt benchmarks (PostgreSQL; ratio = library vs same-run raw)")
    for column in ("benchmark", "library", "baseline", "ratio", "target", "met"):
        table.add_column(column)
    for c in comparisons:
        met = {True: "[green]yes", False: "[red]NO", None: "-"}[c.met]
        baseline = "-" if c.baseline is None else _figure(c.baseline)
        ratio = "-" if c.ratio is None else f"{c.ratio:.2f}x"
        table.add_row(c.benchmark, _figure(c.library), baseline, ratio, c.target, met)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--database-url", help="PostgreSQL admin URL (default: a private cluster of our own)"
    )
    parser.add_argument(
        "--minutes", type=float, help="length of benchmark 7's stream (default 10, 1 with --quick)"
    )
    parser.add_argument("--repeat", type=int, help="runs per benchmark (median is reported)")
    parser.add_argument(
        "--only", type=int, action="append", help="run only benchmark N (1-9); repeatable"
    )
    args = parser.parse_args(argv)
    sizes = Sizes.for_run(args.quick)
    minutes = args.minutes or (1.0 if args.quick else sizes.stream_minutes)
    sizes = replace(sizes, stream_minutes=minutes)
    repeat = args.repeat or (1 if args.quick else 3)
    console = Console(width=180)  # the table is wide; do not fold it at 80 when piped
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    with ExitStack() as stack:
        url, where = args.database_url, "the server at --database-url"
        if url is None:
            cluster = stack.enter_context(PgCluster.started(SERVER_DEFAULTS))
            url, where = (
                cluster.url(),
                f"a private cluster (initdb {cluster.data}, port {cluster.port})",
            )
        database = stack.enter_context(bench_database(url))
        server = f"{server_facts(database)} on {where}"
        comparisons = run_all(database, sizes, repeat, args.only)
    load_after = os.getloadavg()
    report(comparisons, console)
    console.print(
        f"{platform.platform()}, {os.cpu_count()} CPUs, {server}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"{'quick, ' if args.quick else ''}median of {repeat} run(s)"
    )
    if args.json:
        document = {
            "started_at": started.isoformat(),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "server": server,
            "load_average_before_after": [load_before[0], load_after[0]],
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
