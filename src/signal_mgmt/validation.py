"""Input models whose validation failures are the library's own typed error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from signal_mgmt.errors import InvalidInputError


class InputModel(BaseModel):
    """Base of every pydantic model a caller constructs (candidates, events, ...).

    Constructing one with bad data raises ``InvalidInputError`` naming the first
    offending field, so callers catch one exception tree, never pydantic's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise invalid_input(error, type(self).__name__) from None


def invalid_input(error: ValidationError, model: str) -> InvalidInputError:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    where = f"{model}.{field}" if field else model
    count = error.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return InvalidInputError(
        f"invalid {where}: {first['msg']}{more}", field=field, value=first.get("input")
    )
