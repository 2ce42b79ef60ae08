"""Which packages the distribution holds; everything else is in pyproject.toml.

Only this needs code: the Alembic history stays at the repository's top-level
``migrations/`` and ships inside the package as ``signal_mgmt._migrations``, found
at run time through ``importlib.resources`` (wheel and editable installs alike).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "signal_mgmt._migrations", "signal_mgmt._migrations.versions"],
    package_dir={"": "src", "signal_mgmt._migrations": "migrations"},
)
