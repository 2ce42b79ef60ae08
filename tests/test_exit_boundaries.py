"""Module boundaries, checked on the source: only TMS writes trades, only the dispatcher
creates exit orders."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import signal_mgmt

PACKAGE = Path(signal_mgmt.__file__).parent
WRITE_CALLS = {"update", "insert", "delete", "insert_ignore", "upsert", "transition"}
RAW_WRITE = re.compile(r"\b(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+\"?trades\b", re.IGNORECASE)


def _is_trades(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "Trade"
    if isinstance(node, ast.Attribute):
        return node.attr == "__table__" and _is_trades(node.value)
    return isinstance(node, ast.Constant) and node.value == "trades"


def trade_writes(tree: ast.AST) -> Iterator[int]:
    """Line numbers of statements that write the trades table."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in WRITE_CALLS and any(_is_trades(arg) for arg in node.args[:3]):
                yield node.lineno
            table_method = isinstance(func, ast.Attribute) and _is_trades(func.value)
            if name in {"update", "insert", "delete"} and table_method:  # Trade.__table__.update()
                yield node.lineno
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_WRITE.search(node.value)
        ):
            yield node.lineno


def writers() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = list(trade_writes(ast.parse(path.read_text(), filename=str(path))))
        if lines:
            found[path.relative_to(PACKAGE).as_posix()] = lines
    return found


def test_only_tms_writes_trades() -> None:
    found = writers()
    assert "tms/close.py" in found  # the scan sees real writes
    outside = {path: lines for path, lines in found.items() if not path.startswith("tms/")}
    assert outside == {}


def test_the_scan_catches_every_write_form() -> None:
    source = """
conn.execute(update(Trade).values(status="CLOSED"))
transition(conn, Trade, 1, expected=[], target=X)
conn.execute(insert_ignore(conn, Trade, ["id"]), rows)
conn.execute(Trade.__table__.delete())
conn.execute(text("UPDATE trades SET status = 'CLOSED'"))
conn.execute(select(Trade.id))
"""
    assert sorted(trade_writes(ast.parse(source))) == [2, 3, 4, 5, 6]


def test_only_the_dispatcher_creates_exit_orders() -> None:
    makers = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            purpose = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            if purpose and node.attr == "EXIT" and node.value.id == "OrderPurpose":  # type: ignore[attr-defined]
                makers.add(path.relative_to(PACKAGE).as_posix())
    # orders.py only maps the purpose to its client-id prefix.
    assert makers == {"execution/exit_dispatcher.py", "execution/orders.py"}
