"""The Alembic history; installed as the package ``signal_mgmt._migrations`` (setup.py)."""
