"""The built wheel, installed (not editable) into a fresh venv outside the source tree, migrates
a database and runs the README's quick start: the migrations travel inside the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from signal_mgmt import __version__
from test_readme import QUICK_START_PRINTS, python_blocks

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "src", "migrations")

pytestmark = pytest.mark.slow


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def build_wheel(tmp_path: Path) -> Path:
    """From a copy of the sources (a build writes into its tree; the checkout stays clean)."""
    source = tmp_path / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name,
                source / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", dist, source, cwd=tmp_path)  # fmt: skip
    (wheel,) = dist.glob("signal_mgmt-*.whl")
    return wheel


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A venv holding only the wheel; its dependencies come from this venv's site-packages,
    added as a plain path (no .pth of ours runs there, so the editable checkout stays out)."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel,
        cwd=tmp_path)  # fmt: skip
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
               cwd=tmp_path).strip()  # fmt: skip
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_installed_wheel_migrates_and_runs_the_quick_start(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    venv = fresh_venv(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_MGMT_", "PYTHON"))}
    python, cli = venv / "bin" / "python", venv / "bin" / "signal-mgmt"

    where = run(python, "-c", "import signal_mgmt; print(signal_mgmt.__file__)", cwd=elsewhere,
                env=env)  # fmt: skip
    assert Path(where.strip()).is_relative_to(venv)  # the wheel's copy, not the checkout
    assert f"signal-mgmt {__version__}" in run(cli, "--version", cwd=elsewhere, env=env)
    assert "schema is up to date" in run(cli, "migrate", cwd=elsewhere, env=env)
    assert (elsewhere / "signal_mgmt.db").exists()
    assert run(cli, "migrate", "current", cwd=elsewhere, env=env).strip().startswith("0")

    (elsewhere / "quick_start.py").write_text(python_blocks()[0])
    assert run(python, "quick_start.py", cwd=elsewhere, env=env).strip() == QUICK_START_PRINTS
