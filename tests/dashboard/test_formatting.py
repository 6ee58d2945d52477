from datetime import date
from decimal import Decimal

from spendscope.dashboard.filters import Filters, default_range
from spendscope.dashboard.formatting import (
    format_count,
    format_money,
    format_percent,
    format_seconds,
    parse_money,
    project_month,
    sum_money,
)


def test_money_is_currency_from_decimal_strings() -> None:
    assert format_money("1234.5678") == "$1,234.57"
    assert format_money("0.004200000000") == "$0.0042"
    assert format_money("0") == "$0.00"
    assert format_money("-3.005") == "-$3.00"  # banker's rounding, as the API's decimals
    assert format_money(None) == "unpriced"
    assert format_money("nonsense") == "unpriced"
    assert format_money("NaN") == "unpriced"


def test_sum_is_exact_and_none_when_nothing_priced() -> None:
    assert sum_money(["0.1", "0.2", None]) == Decimal("0.3")
    assert sum_money([None, None]) is None
    assert parse_money("1E+2") == Decimal(100)


def test_percent_count_seconds() -> None:
    assert format_percent(0.25) == "25.0%"
    assert format_percent("0.0333", digits=2) == "3.33%"
    assert format_percent(None) == "—"
    assert format_count(1234567) == "1,234,567"
    assert format_seconds(0.1234) == "123 ms"
    assert format_seconds(2.5) == "2.50 s"


def test_projection_is_linear() -> None:
    assert project_month(Decimal("10"), 86_400, 30 * 86_400) == Decimal("300.0000")
    assert project_month(Decimal("10"), 0, 30 * 86_400) == Decimal("10")


def test_filters_make_exclusive_end_and_comma_lists() -> None:
    f = Filters(date(2026, 3, 1), date(2026, 3, 2), {"model": ("a", "b"), "user": ()})
    p = f.params()
    assert p["start"] == "2026-03-01T00:00:00Z"
    assert p["end"] == "2026-03-03T00:00:00Z"
    assert p["model"] == "a,b"
    assert "user" not in p
    assert f.bucket == "hour" and f.active
    assert Filters(date(2026, 3, 1), date(2026, 3, 20)).bucket == "day"
    assert default_range(date(2026, 3, 2)) == (date(2026, 2, 24), date(2026, 3, 2))
    assert default_range(date(2026, 3, 20)) == (date(2026, 3, 1), date(2026, 3, 20))
