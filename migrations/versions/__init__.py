"""Alembic revisions of signal_mgmt, oldest first (``down_revision`` chains them)."""
