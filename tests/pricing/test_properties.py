"""Properties of the engine over the whole bundled table (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from spendscope.pricing import PriceRow, PriceTable, Usage, price_usage

TABLE = PriceTable.default()
AT = datetime(2026, 11, 1, tzinfo=UTC)
TEXT_ROWS = [
    r
    for r in (
        TABLE.row_in_force(m, t, AT.date())
        for m in TABLE.models()
        for t in ("default", "flex", "priority", "batch")
    )
    if r is not None and r.input_per_mtok is not None and r.output_per_mtok is not None
]
counts = st.integers(min_value=0, max_value=400_000)
small = st.integers(min_value=1, max_value=50_000)


def _usage(text_in: int, cached: int, write: int, text_out: int, reasoning: int) -> Usage:
    """Build inclusive OpenAI usage from exclusive parts."""
    return Usage(
        input_tokens=text_in + cached + write,
        cached_input_tokens=cached,
        cache_write_input_tokens=write,
        output_tokens=text_out + reasoning,
        reasoning_tokens=reasoning,
    )


def _price(row: PriceRow, usage: Usage) -> Decimal:
    priced = price_usage(TABLE, row.model, AT, usage, service_tier=row.tier, batch=row.tier == "batch")
    assert priced.status in ("priced", "free"), priced.reason
    assert priced.cost is not None
    return priced.cost


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TEXT_ROWS), counts, counts, counts, counts, counts)
def test_cost_is_never_negative(row: PriceRow, a: int, b: int, c: int, d: int, e: int) -> None:
    assert _price(row, _usage(a, b, c, d, e)) >= 0


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TEXT_ROWS), counts, counts, counts, counts, counts, st.integers(0, 4), small)
def test_cost_is_monotone_in_each_token_kind(
    row: PriceRow, a: int, b: int, c: int, d: int, e: int, which: int, extra: int
) -> None:
    parts = [a, b, c, d, e]
    before = _price(row, _usage(*parts))
    parts[which] += extra
    assert _price(row, _usage(*parts)) >= before


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TEXT_ROWS), counts, counts, counts, small)
def test_cached_input_is_never_dearer_than_uncached(
    row: PriceRow, a: int, b: int, d: int, moved: int
) -> None:
    uncached = _price(row, _usage(a + moved, b, 0, d, 0))
    cached = _price(row, _usage(a, b + moved, 0, d, 0))
    assert cached <= uncached


def _half_batch_rows() -> list[tuple[str, date]]:
    """Models whose batch row is exactly half of the standard row in force on the same day."""
    out: list[tuple[str, date]] = []
    for model in TABLE.models():
        batch = TABLE.row_in_force(model, "batch", AT.date())
        std = TABLE.row_in_force(model, "default", AT.date())
        if batch is None or std is None or std.long_context_threshold != batch.long_context_threshold:
            continue
        fields = ("input_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok", "output_per_mtok")
        fields_lc = tuple(f"long_context_{f}" for f in fields)
        if all(
            (std.money(f) is None and batch.money(f) is None)
            or (std.money(f) is not None and batch.money(f) == std.money(f) / 2)  # type: ignore[operator]
            for f in fields + fields_lc
        ):
            out.append((model, AT.date()))
    return out


HALF = _half_batch_rows()


def test_most_batch_rows_are_exactly_half() -> None:
    assert len(HALF) >= 30, HALF


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HALF), counts, counts, counts, counts, counts)
def test_batch_is_exactly_half_where_the_batch_price_is_half(
    pick: tuple[str, date], a: int, b: int, c: int, d: int, e: int
) -> None:
    model, _ = pick
    usage = _usage(a, b, c, d, e)
    std = price_usage(TABLE, model, AT, usage)
    batch = price_usage(TABLE, model, AT, usage, batch=True)
    if std.cost is None:  # e.g. output tokens on an embedding model: unpriced in both
        assert batch.cost is None
        return
    assert batch.cost is not None
    assert batch.cost * 2 == std.cost


@given(st.text(min_size=1, max_size=40))
def test_arbitrary_names_never_raise(name: str) -> None:
    priced = price_usage(TABLE, name, AT, Usage(input_tokens=10))
    assert priced.status in ("priced", "unpriced")
    assert (priced.cost is None) == (priced.status == "unpriced")
