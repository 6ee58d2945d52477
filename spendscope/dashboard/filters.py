"""The shared filters (range, project, model, service, user, feature) and their query parameters.

Pure: the sidebar in ``app.py`` stores a :class:`Filters` in ``st.session_state``; pages turn it into
API parameters with :meth:`Filters.params`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from spendscope.dimensions import DIMENSIONS
from spendscope.isotime import format_time

__all__ = ["STATE_KEY", "Filters", "default_range"]

STATE_KEY = "spendscope_filters"


def default_range(today: date) -> tuple[date, date]:
    """Month to date, and at least the last 7 days, so early-month views are not empty."""
    first = today.replace(day=1)
    return min(first, today - timedelta(days=6)), today


@dataclass(frozen=True, slots=True)
class Filters:
    """Inclusive UTC days ``start``..``end`` plus exact-match selections per dimension."""

    start: date
    end: date
    selected: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def start_time(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def end_time(self) -> datetime:
        # The API's end is exclusive: the whole last day is in.
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def bucket(self) -> str:
        """Hourly buckets for short ranges (a day reads as a curve), daily beyond three days."""
        return "hour" if (self.end - self.start).days < 3 else "day"

    def range_params(self) -> dict[str, str | int | None]:
        return {
            "start": format_time(self.start_time),
            "end": format_time(self.end_time),
        }

    def params(self) -> dict[str, str | int | None]:
        """Range plus the dimension filters as comma lists (the insights endpoints' format)."""
        out = self.range_params()
        for dim in DIMENSIONS:
            values = self.selected.get(dim, ())
            if values:
                out[dim] = ",".join(values)
        return out

    @property
    def active(self) -> bool:
        """True when a dimension filter narrows the data (endpoints without filters would disagree)."""
        return any(self.selected.get(d) for d in DIMENSIONS)
