"""The library's input choke points: one check per kind of value a caller hands in.

Every public entry point passes its data through here before it opens a
transaction, so bad input is an ``InvalidInputError`` (a ``SignalMgmtError``)
and nothing is written, on every backend. The bounds are the columns' own:
ids are 64-bit, money has ``Money``'s precision and scale, text holds no NUL
(PostgreSQL refuses it), JSON holds no NaN or infinity (not JSON at all), and
datetimes lie in the storable range of ``market.clock``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from signal_mgmt.errors import InvalidInputError
from signal_mgmt.market.clock import require_aware
from signal_mgmt.models import MONEY_PRECISION, MONEY_SCALE

MAX_ID = 2**63 - 1
"""Largest id: BIGINT on PostgreSQL, INTEGER on SQLite."""
MAX_BATCH = 1_000_000
"""Largest limit or batch size a caller may ask for."""
MAX_MONEY = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)
"""Money magnitudes must stay below this (the column's integer digits); a value with
more than ``MONEY_SCALE`` decimal places would be rounded away by PostgreSQL."""
MAX_JSON_DEPTH = 32

T = TypeVar("T")

MAX_DURATION = timedelta(days=36525)
"""Longest duration a setting or option may give (100 years)."""

Price = Annotated[Decimal, Field(gt=0, lt=MAX_MONEY, allow_inf_nan=False)]
"""A positive price or level that the library puts on a tick before storing it."""
ExactPrice = Annotated[
    Decimal, Field(gt=0, lt=MAX_MONEY, allow_inf_nan=False, decimal_places=MONEY_SCALE)
]
"""A positive price, tick or amount stored as given: no finer than the money column holds."""
ExactMoney = Annotated[
    Decimal, Field(ge=0, lt=MAX_MONEY, allow_inf_nan=False, decimal_places=MONEY_SCALE)
]
"""A non-negative amount stored as given."""
Id = Annotated[int, Field(strict=True, gt=0, le=MAX_ID)]
"""A row id: an int (never a bool or a numeric string) in 1..MAX_ID."""


class InputModel(BaseModel):
    """Base of every pydantic model a caller constructs (candidates, events, specs).

    Constructing one with bad data raises ``InvalidInputError`` naming the first
    offending field, so callers catch one exception tree, never pydantic's.
    After pydantic's own checks, every value (nested ones too) passes the
    storable-value checks of ``require_storable``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise invalid_input(error, type(self).__name__) from None
        name = type(self).__name__
        for field in type(self).model_fields:
            require_storable(getattr(self, field), f"{name}.{field}")


def invalid_input(error: ValidationError, model: str) -> InvalidInputError:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    where = f"{model}.{field}" if field else model
    count = error.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return InvalidInputError(
        f"invalid {where}: {first['msg']}{more}", field=field, value=first.get("input")
    )


def require_id(value: object, field: str) -> int:
    """A row id: an int in 1..2^63-1 (a bool is not an id)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise InvalidInputError(f"{field} must be an id in 1..{MAX_ID}", field=field, value=value)
    return value


def require_count(value: object, field: str) -> int:
    """A limit or batch size: an int in 1..MAX_BATCH."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_BATCH:
        raise InvalidInputError(
            f"{field} must be an integer in 1..{MAX_BATCH}", field=field, value=value
        )
    return value


def require_money(value: object, field: str) -> Decimal:
    """A non-negative amount stored as given: finite, below MAX_MONEY, at most MONEY_SCALE places.

    Ints, floats (by their shortest repr) and decimal strings are taken; bools are not.
    """
    try:
        if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
            raise InvalidOperation
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise InvalidInputError(f"{field} must be a number", field=field, value=value) from None
    if not (amount.is_finite() and 0 <= amount < MAX_MONEY):
        raise InvalidInputError(
            f"{field} must be a finite amount in 0..{MAX_MONEY}", field=field, value=value
        )
    if int(amount.normalize().as_tuple().exponent) < -MONEY_SCALE:
        raise InvalidInputError(
            f"{field} has more than {MONEY_SCALE} decimal places", field=field, value=value
        )
    return amount


def require_duration(seconds: object, field: str) -> timedelta:
    """A duration from a number of seconds: finite, >= 0, at most MAX_DURATION."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise InvalidInputError(f"{field} must be a number of seconds", field=field, value=seconds)
    if not 0 <= seconds <= MAX_DURATION.total_seconds():  # NaN fails both comparisons
        raise InvalidInputError(
            f"{field} must be 0..{MAX_DURATION.days} days", field=field, value=seconds
        )
    return timedelta(seconds=seconds)


def require_text(value: object, field: str, max_length: int) -> str:
    """A name: 1..max_length characters, not blank, without NUL."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidInputError(
            f"{field} must be 1..{max_length} characters", field=field, value=value
        )
    return require_storable(value, field)


def require_storable(value: T, field: str) -> T:
    """``value`` (walked through containers and models) fits the database as it is.

    Text holds no NUL, floats are finite (JSON has no NaN or infinity), ints and
    decimals fit their 64-bit and money columns, datetimes are aware and storable.
    """
    _check(value, field, 0)
    return value


def _check(value: object, where: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise InvalidInputError(f"{where} nests deeper than {MAX_JSON_DEPTH}", field=where)
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInputError(f"{where} must not contain NUL", field=where, value=value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_ID:
            raise InvalidInputError(f"{where} does not fit 64 bits", field=where, value=value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} must be finite", field=where, value=value)
    elif isinstance(value, Decimal):
        if not (value.is_finite() and abs(value) < MAX_MONEY):
            raise InvalidInputError(
                f"{where} must be finite and below {MAX_MONEY}", field=where, value=value
            )
    elif isinstance(value, datetime):
        require_aware(value, where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check(key, f"{where} key", depth + 1)
            _check(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _check(getattr(value, name), f"{where}.{name}", depth + 1)
