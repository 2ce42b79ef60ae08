"""The summary as rich tables (the same data ``--json-summary`` writes)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counts.items()) or "-"


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("figures")
    for what, figures in rows:
        table.add_row(what, figures)
    return table


def render_summary(summary: dict[str, Any], console: Console) -> None:
    run, this_run, stored = summary["run"], summary["this_run"], summary["database"]
    faults = this_run["faults"]
    entry, trades, exits = stored["entry_intents"], stored["trades"], stored["exits"]
    outbox = stored["outbox"]
    replay = faults["replayed_after_restart"] or {}
    console.print(
        f"[bold]Simulated NSE day {run['date']} · seed {run['seed']} · "
        f"{run['symbols']} symbols · {run['users']} user-brokers"
    )
    console.print(
        _table(
            "This run",
            [
                (
                    "ticks / breakouts",
                    f"{this_run['ticks']:,} ticks, {this_run['breakouts']} breakouts",
                ),
                (
                    "exit candidates",
                    (
                        f"{this_run['exit_candidates']} "
                        f"({this_run['exits_suppressed_in_episode']} suppressed in an episode)"
                    ),
                ),
                ("events emitted", _reasons(this_run["events_emitted_by_type"])),
                ("events published", str(this_run["events_published"])),
                (
                    "faults / host actions",
                    (
                        f"broker outage {faults['broker_outage']}, "
                        f"{faults['broker_rejections']} rejections, "
                        f"{faults['unknown_outcomes']} unknown outcomes, "
                        f"{faults['restarts']} restart(s), {faults['manual_exits']} forced exit(s)"
                    ),
                ),
                ("  replayed after restart", _reasons({k: v for k, v in replay.items() if v})),
            ],
        )
    )
    console.print(
        _table(
            f"In the database: trading day {stored['trading_day']} (every run on it)",
            [
                (
                    "signals / deliveries",
                    f"{stored['signals']} signals, {stored['deliveries']} deliveries",
                ),
                ("entry intents", f"{entry['approved']} approved, {entry['rejected']} rejected"),
                ("  rejected by reason", _reasons(entry["rejected_by_reason"])),
                ("  approved, sized down", _reasons(entry["approved_notes"])),
                (
                    "trades",
                    (
                        f"{trades['opened']} opened, {trades['entry_failed']} entry failed, "
                        f"{trades['closed']} closed, {trades['still_open']} still open"
                    ),
                ),
                (
                    "exit intents",
                    (
                        f"{exits['approved']} approved, {exits['rejected']} rejected "
                        f"({exits['exit_signals']} exit signals)"
                    ),
                ),
                ("  rejected by reason", _reasons(exits["rejected_by_reason"])),
                ("  filled by exit reason", _reasons(exits["filled_by_exit_reason"])),
                ("  final status", _reasons(exits["by_final_status"])),
                (
                    "outbox (every day)",
                    (
                        f"{outbox['published']} published, {outbox['pending']} pending, "
                        f"{outbox['dead_letters']} dead letters"
                    ),
                ),
            ],
        )
    )

    pnl = Table(title=f"P&L per user-broker: closed trades of {stored['trading_day']} (database)")
    for column in ("user-broker", "profile", "closed", "P&L (INR)"):
        pnl.add_column(column, justify="right" if column in ("closed", "P&L (INR)") else "left")
    for row in stored["pnl"]["by_user_broker"]:
        pnl.add_row(row["user_broker"], row["profile"], str(row["closed_trades"]), row["pnl"])
    pnl.add_row("total", "", "", stored["pnl"]["total"], style="bold")
    console.print(pnl)

    checks = Table(title="Invariants")
    checks.add_column("")
    checks.add_column("invariant")
    checks.add_column("detail")
    for check in summary["invariants"]:
        mark = "[green]✓" if check["ok"] else "[red]✗"
        checks.add_row(mark, check["name"], check["detail"])
    console.print(checks)
