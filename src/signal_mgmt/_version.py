"""The version of signal_mgmt: its one source (pyproject.toml reads it from here)."""

__version__ = "0.2.0"
