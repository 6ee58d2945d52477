"""Pure formatting of the API's values for people: money, percentages, counts, durations.

Money arrives as decimal strings and stays :class:`~decimal.Decimal` here; floats appear only in
chart data, never in a total shown as a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = [
    "format_count",
    "format_money",
    "format_percent",
    "format_seconds",
    "format_spend",
    "parse_money",
    "project_month",
    "sum_money",
]

_CENT = Decimal("0.01")
_MILLI_CENT = Decimal("0.0001")


def parse_money(value: str | int | Decimal | None) -> Decimal | None:
    """A decimal string from the API as Decimal; None (unpriced) and junk stay None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def format_money(value: str | int | Decimal | None, *, unpriced: str = "unpriced") -> str:
    """``$1,234.57``; amounts under a cent keep four decimals so small spend is not shown as $0.00."""
    d = parse_money(value)
    if d is None:
        return unpriced
    sign = "-" if d < 0 else ""
    d = abs(d)
    q = _MILLI_CENT if Decimal(0) < d < _CENT else _CENT
    return f"{sign}${d.quantize(q, rounding=ROUND_HALF_EVEN):,}"


def format_spend(value: str | int | Decimal | None, unpriced_calls: int | None) -> str:
    """A spend total: ``$0.00`` only when nothing was spent; with unpriced calls and nothing known
    to cost anything it is ``unpriced``, never a definite $0 (the page flags the unpriced calls)."""
    return format_money(value, unpriced="unpriced" if unpriced_calls else "$0.00")


def sum_money(values: Iterable[str | int | Decimal | None]) -> Decimal | None:
    """Exact sum of decimal strings; None when none of them is priced."""
    total: Decimal | None = None
    for v in values:
        d = parse_money(v)
        if d is not None:
            total = d if total is None else total + d
    return total


def format_percent(value: float | Decimal | str | None, *, digits: int = 1) -> str:
    """A ratio (0.25) as ``25.0%``; None as an em dash."""
    if value is None:
        return "—"
    try:
        d = Decimal(str(value)) * 100
    except InvalidOperation:
        return "—"
    if not d.is_finite():
        return "—"
    return f"{d.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)}%"


def format_count(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def format_seconds(value: float | None) -> str:
    """Latency: milliseconds under a second, seconds above."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def project_month(month_to_date: Decimal, elapsed_s: float, month_s: float) -> Decimal:
    """Linear projection of the month from spend so far (the simplest forecast finance can check)."""
    if elapsed_s <= 0 or month_s <= 0:
        return month_to_date
    ratio = Decimal(str(month_s)) / Decimal(str(elapsed_s))
    return (month_to_date * ratio).quantize(_MILLI_CENT, rounding=ROUND_HALF_EVEN)
