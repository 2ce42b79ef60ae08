"""The README's Python examples run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK_START_PRINTS = "True [('APPROVED', 10)]"


def python_blocks() -> list[str]:
    """The README's ```python blocks, in order: the quick start first."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


def run_block(source: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "README.md", "exec"), {})
    return printed.getvalue().strip()


def test_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_block(python_blocks()[0]) == QUICK_START_PRINTS
    assert (tmp_path / "quickstart.db").exists()


def test_a_callers_session_commits_or_rolls_back_the_library_rows_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    quick_start, session_example = python_blocks()[:2]
    printed = run_block(quick_start + session_example)
    assert printed.splitlines()[-1] == "1 1"  # one note, one VWAP signal: the rolled-back pair


def test_quick_start_imports_only_the_package_top_level() -> None:
    imports = re.findall(r"^(?:from|import) (\S+)", python_blocks()[0], re.MULTILINE)
    assert {name for name in imports if name.startswith("signal_mgmt")} == {"signal_mgmt"}
