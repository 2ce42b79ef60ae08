"""The summary as rich tables (the same data ``--json-summary`` writes)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counts.items()) or "-"


def render_summary(summary: dict[str, Any], console: Console) -> None:
    run = summary["run"]
    entry, trades, exits = summary["entry_intents"], summary["trades"], summary["exits"]
    events, faults = summary["events"], summary["faults"]
    day = Table(
        title=(
            f"Simulated NSE day {run['date']} · seed {run['seed']} · "
            f"{run['symbols']} symbols · {run['users']} user-brokers"
        ),
        show_header=False,
    )
    day.add_column("what", style="bold")
    day.add_column("figures")
    replay = faults["replayed_after_restart"] or {}
    for what, figures in (
        ("ticks / breakouts", f"{run['ticks']:,} ticks, {run['breakouts']} breakouts"),
        (
            "signals / deliveries",
            f"{summary['signals']} signals, {summary['deliveries']} deliveries",
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
                f"({exits['candidates']} candidates, {exits['suppressed_in_episode']} suppressed)"
            ),
        ),
        ("  rejected by reason", _reasons(exits["rejected_by_reason"])),
        ("  filled by exit reason", _reasons(exits["filled_by_exit_reason"])),
        ("  final status", _reasons(exits["by_final_status"])),
        (
            "events",
            (
                f"{events['published_this_run']} published this run "
                f"({events['published_total']} in total), {events['pending']} pending"
            ),
        ),
        ("dead letters", str(events["dead_letters"])),
        (
            "faults / host actions",
            (
                f"broker outage {faults['broker_outage']}, "
                f"{faults['broker_rejections']} rejections, "
                f"{faults['unknown_outcomes']} unknown outcomes, {faults['restarts']} restart(s), "
                f"{faults['manual_exits']} forced exit(s)"
            ),
        ),
        ("  replayed after restart", _reasons({k: v for k, v in replay.items() if v})),
    ):
        day.add_row(what, figures)
    console.print(day)

    pnl = Table(title="P&L per user-broker (closed trades)")
    for column in ("user-broker", "profile", "closed", "P&L (INR)"):
        pnl.add_column(column, justify="right" if column in ("closed", "P&L (INR)") else "left")
    for row in summary["pnl"]["by_user_broker"]:
        pnl.add_row(row["user_broker"], row["profile"], str(row["closed_trades"]), row["pnl"])
    pnl.add_row("total", "", "", summary["pnl"]["total"], style="bold")
    console.print(pnl)

    checks = Table(title="Invariants")
    checks.add_column("")
    checks.add_column("invariant")
    checks.add_column("detail")
    for check in summary["invariants"]:
        mark = "[green]✓" if check["ok"] else "[red]✗"
        checks.add_row(mark, check["name"], check["detail"])
    console.print(checks)
