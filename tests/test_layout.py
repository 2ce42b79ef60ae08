"""The layout's import rule, checked on the source: no import runs up the pipeline.

storage/ and qualification/ import no stage; execution/ imports nothing from exit/ or tms/;
only cli/ imports demo/; nothing imports cli/; and no module imports the package root, whose
API is for hosts (it imports every stage). Imports under TYPE_CHECKING or inside functions
count too: they are dependencies all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import signal_mgmt

PACKAGE = Path(signal_mgmt.__file__).parent
ROOT = "signal_mgmt"
STAGES = frozenset({"entry", "qualification", "exit", "execution", "tms", "cli", "demo"})
# the package's folders and top-level modules
UNITS = frozenset(
    path.stem
    for path in PACKAGE.iterdir()
    if (path / "__init__.py").exists() or path.suffix == ".py"
)
FORBIDDEN = {
    "storage": STAGES,
    "qualification": STAGES - {"qualification"},
    "execution": frozenset({"exit", "tms", "cli", "demo"}),
}


def imported_modules(relpath: str, source: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module or ``module.name``) for every import in one module's source."""
    package = [ROOT, *Path(relpath).parts[:-1]]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:  # ``from signal_mgmt import exit`` imports exit/
                yield node.lineno, f"{module}.{alias.name}"


def unit_of(module: str) -> str | None:
    """The folder or top-level module an import lands in; ROOT for the package's own API."""
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    return parts[1] if len(parts) > 1 and parts[1] in UNITS else ROOT


def breaks_the_rule(importer: str, target: str) -> bool:
    if target == importer:
        return False
    if target in {ROOT, "cli"}:
        return True
    if target == "demo":
        return importer != "cli"
    return target in FORBIDDEN.get(importer, frozenset())


def violations(sources: Mapping[str, str]) -> list[str]:
    """``path:line imports module`` for each import that runs up the pipeline."""
    found = []
    for relpath, source in sorted(sources.items()):
        if relpath == "__init__.py":  # the public API: it may import every stage
            continue
        importer = Path(relpath).parts[0].removesuffix(".py")
        for line, module in imported_modules(relpath, source):
            target = unit_of(module)
            if target is not None and breaks_the_rule(importer, target):
                found.append(f"{relpath}:{line} imports {module}")
    return found


def package_sources() -> dict[str, str]:
    return {
        path.relative_to(PACKAGE).as_posix(): path.read_text()
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_import_runs_up_the_pipeline() -> None:
    sources = package_sources()
    assert {"storage/db.py", "qualification/sizing.py", "execution/orders.py"} <= set(sources)
    assert violations(sources) == []


def test_the_scan_catches_every_rule_and_import_form() -> None:
    sources = {
        "storage/db.py": "from signal_mgmt.entry.service import SignalService\n",
        "qualification/exit_rules.py": "from ..exit.conditions import ExitReason\n",
        "execution/orders.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from signal_mgmt.tms import TradeOpener\n"
        ),
        "exit/service.py": "def f() -> None:\n    import signal_mgmt.demo.day\n",
        "outbox/relay.py": "from signal_mgmt import SignalService\n",
        "tms/open.py": "from signal_mgmt import cli\n",
        # allowed: down the pipeline, within a folder, cli -> demo, the public API
        "tms/close.py": "from signal_mgmt.execution import orders\nfrom . import open\n",
        "execution/broker.py": "from signal_mgmt.storage.db import transaction\nimport uuid\n",
        "qualification/sizing.py": "from signal_mgmt.reference.types import to_tick\n",
        "cli/demo.py": "from signal_mgmt.demo import day\n",
        "entry/__init__.py": "from .service import SignalService\n",
        "__init__.py": "from signal_mgmt.cli import app\n",
        "errors.py": "",
    }
    assert violations(sources) == [
        "execution/orders.py:3 imports signal_mgmt.tms.TradeOpener",
        "exit/service.py:2 imports signal_mgmt.demo.day",
        "outbox/relay.py:1 imports signal_mgmt.SignalService",
        "qualification/exit_rules.py:1 imports signal_mgmt.exit.conditions.ExitReason",
        "storage/db.py:1 imports signal_mgmt.entry.service.SignalService",
        "tms/open.py:1 imports signal_mgmt.cli",
    ]
