"""ISO 8601 times on the collector API's client side: one way to write them, one way to read them.

:func:`format_time` writes every time a client puts in a request (UTC with ``Z``, the form the
collector's answers use); :func:`parse_time` and :func:`parse_since` read the times a person types on
the command line. Standard library only: the CLI imports this from the SDK-only install.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

__all__ = ["format_time", "parse_since", "parse_time"]

_AGO = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def format_time(t: datetime) -> str:
    """``2026-03-01T09:00:00Z``: the instant in UTC; a time without a zone is taken as UTC."""
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An ISO date (that day's start) or time, with ``Z`` or an offset; without a zone it is UTC.

    Raises :class:`argparse.ArgumentTypeError` (a command-line argument type), whose message argparse
    prints as it is.
    """
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or time (such as 2026-03-01 or 2026-03-01T09:00:00Z)"
        ) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30s``, ``30m``, ``24h``, ``7d`` or ``2w`` before ``now``, or anything :func:`parse_time` reads."""
    m = _AGO.match(text.strip())
    if m is None:
        try:
            return parse_time(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: use 7d, 24h, 30m or an ISO date/time such as 2026-03-01T09:00:00Z"
            ) from None
    return (now or datetime.now(UTC)) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
