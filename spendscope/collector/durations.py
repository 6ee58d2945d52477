"""The one duration syntax of the config file and the HTTP API.

A duration is a number of seconds (``90``, ``0.5``) or a string of a number and a unit: ``ms``, ``s``,
``m``, ``h``, ``d`` or ``w``, decimals allowed (``"90s"``, ``"1.5h"``, ``"1w"``). It is bounded: never
negative, NaN or infinite, zero only where a key says so, and at most ten years, so that no value can
overflow a date later (a silence of ``1e30`` seconds).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema

__all__ = ["MAX_DURATION_S", "Duration", "DurationOrZero", "format_duration", "parse_duration"]

MAX_DURATION_S = 10 * 365 * 86400
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SYNTAX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_LIKE = 'a duration: seconds, or a number with a unit ms, s, m, h, d or w, like 90, "90s", "1.5h", "1w"'


def parse_duration(value: Any, *, allow_zero: bool = False) -> float:
    """Seconds from ``value``; a whole number of seconds comes back as an ``int`` (it prints as one).

    Raises ``ValueError`` saying what a duration must be; the caller names the key and the value.
    """
    if isinstance(value, str) and (m := _SYNTAX.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        # float() of a huge int overflows: it is out of bounds anyway.
        seconds = math.inf if isinstance(value, int) and value > MAX_DURATION_S else float(value)
    else:
        raise ValueError(f"must be {_LIKE}")
    if math.isnan(seconds):
        raise ValueError(f"must be {_LIKE}")
    if seconds < 0:
        raise ValueError("must not be negative")
    if seconds == 0 and not allow_zero:
        raise ValueError("must be positive")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"must be at most {format_duration(MAX_DURATION_S)} (ten years)")
    return int(seconds) if seconds.is_integer() else seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: ``3600`` -> ``"1h"``, ``90`` -> ``"90s"``, ``0`` -> ``"0"``."""
    if seconds == 0:
        return "0"
    for unit in ("w", "d", "h", "m", "s"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


_SCHEMA = WithJsonSchema(
    {
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": _SYNTAX.pattern}],
        "x-type": "duration",
    }
)
Duration = Annotated[float, PlainValidator(parse_duration), _SCHEMA]
DurationOrZero = Annotated[float, PlainValidator(lambda v: parse_duration(v, allow_zero=True)), _SCHEMA]
