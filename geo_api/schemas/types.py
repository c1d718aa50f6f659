"""Value types whose description states exactly what the server accepts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

# Not blank: a character other than one str.strip() removes (the description's `pattern`;
# pydantic strips first, so a name of spaces would otherwise fail on its length instead).
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


def _text_only(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) or _numeric(value):
        raise ValueError("a date is written as ISO 8601 text, e.g. 2024-05-31 (not a number)")
    return value


def _numeric(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


# Dates and times as ISO text only: pydantic would otherwise take a number (or a string of
# digits) as a Unix time, which the description (format: date / date-time) does not allow.
IsoDate = Annotated[dt.date, BeforeValidator(_text_only)]
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_text_only)]


def _number_only(value: Any) -> Any:
    if isinstance(value, (bool, str)):
        raise ValueError("must be a number, not text or true/false")
    return value


# An integer as JSON numbers write it (3 or 3.0), not true or "3", which pydantic would take.
# Put it after the bounds, Annotated[int, Field(ge=0), NUMBER_ONLY]: after it, pydantic
# describes the bounds as "ge"/"le" instead of minimum/maximum.
NUMBER_ONLY = BeforeValidator(_number_only)
