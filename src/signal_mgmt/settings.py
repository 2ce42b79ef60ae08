"""Settings from the environment (prefix ``SIGNAL_MGMT_``) or keyword arguments."""

from __future__ import annotations

from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from signal_mgmt.errors import ConfigError
from signal_mgmt.redaction import unparseable
from signal_mgmt.storage.db import is_schema_name, make_engine

DEFAULT_DATABASE_URL = "sqlite:///signal_mgmt.db"


class LibrarySettings(BaseSettings):
    """Base of the library's settings: an invalid value, from the environment or a
    keyword, is one ``ConfigError`` line naming the setting, however they are built."""

    label: ClassVar[str] = "setting"

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or self.label
            raise ConfigError(f"invalid {self.label} {where}: {first['msg']}") from None


class Settings(LibrarySettings):
    model_config = SettingsConfigDict(env_prefix="SIGNAL_MGMT_", extra="forbid", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    database_schema: str | None = Field(
        default=None, validation_alias=AliasChoices("SIGNAL_MGMT_SCHEMA", "database_schema")
    )
    """PostgreSQL schema of every library object; None: the connection's own search_path."""
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=1.0, gt=0, le=3600)
    relay_max_attempts: int = Field(default=10, ge=1, le=1_000_000)
    relay_backoff_initial: float = Field(default=0.05, gt=0, le=3600)
    relay_backoff_max: float = Field(default=30.0, gt=0, le=86_400)
    timezone: str = "Asia/Kolkata"
    relay_publisher: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SIGNAL_MGMT_PUBLISHER", "relay_publisher")
    )
    """The relay's publisher SPEC; secret, as a broker URL may carry a password."""

    def engine(self, **kwargs: Any) -> Engine:
        """An engine on this database, pinned to ``database_schema``: every engine of the CLI
        and the demo comes from here, so none forgets the schema."""
        return make_engine(self.database_url, schema=self.database_schema, **kwargs)

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return validate_database_url(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (want e.g. Asia/Kolkata)") from None
        return value

    @field_validator("database_schema")
    @classmethod
    def _valid_schema(cls, value: str | None) -> str | None:
        if value is not None and not is_schema_name(value):
            raise ValueError(
                "lowercase letters, digits and _, at most 63, not starting with a digit or pg_, "
                "not an SQL reserved word or information_schema"
            )
        return value


def validate_database_url(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"not a database URL: {unparseable(value)!r}") from None
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ValueError(f"unsupported database {url.get_backend_name()!r} (sqlite or postgresql)")
    return value


def load_settings(**overrides: object) -> Settings:
    """The library's settings from the environment and ``overrides``."""
    return Settings(**overrides)  # type: ignore[arg-type]
