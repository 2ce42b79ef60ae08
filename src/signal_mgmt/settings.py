"""Settings from the environment (prefix ``SIGNAL_MGMT_``) or keyword arguments."""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from signal_mgmt.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///signal_mgmt.storage.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNAL_MGMT_", extra="forbid", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=1.0, gt=0, le=3600)
    relay_max_attempts: int = Field(default=10, ge=1)
    relay_backoff_initial: float = Field(default=0.05, gt=0)
    relay_backoff_max: float = Field(default=30.0, gt=0)
    timezone: str = "Asia/Kolkata"

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return validate_database_url(value)


def validate_database_url(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError as error:
        raise ValueError(f"not a database URL: {value!r}") from error
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ValueError(f"unsupported database {url.get_backend_name()!r} (sqlite or postgresql)")
    return value


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def build_settings(kind: type[SettingsT], label: str, **overrides: object) -> SettingsT:
    """Build ``kind``; any invalid value becomes one ``ConfigError`` line naming the setting."""
    try:
        return kind(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or label
        raise ConfigError(f"invalid {label} {where}: {first['msg']}") from None


def load_settings(**overrides: object) -> Settings:
    """The library's settings from the environment and ``overrides``."""
    return build_settings(Settings, "setting", **overrides)
