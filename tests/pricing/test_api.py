"""The public API the collector codes against: names, types and basic semantics."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from spendscope.pricing import PriceTable, Usage, price_usage

AT = datetime(2026, 11, 1, tzinfo=UTC)


def test_default_table_loads_and_has_a_stable_version() -> None:
    table = PriceTable.default()
    assert table.version == PriceTable.default().version
    assert len(table.version) == 16
    assert table.rows(), "bundled table is empty"


def test_brief_example_prices_gpt_4o_snapshot() -> None:
    usage = Usage(
        input_tokens=1000,
        cached_input_tokens=200,
        cache_write_input_tokens=0,
        output_tokens=500,
        reasoning_tokens=100,
        input_audio_tokens=0,
        output_audio_tokens=0,
        images=0,
        characters=0,
        seconds=0,
    )
    table = PriceTable.default()
    priced = price_usage(table, model="gpt-4o-2024-08-06", at=AT, usage=usage, service_tier=None)
    # 800 uncached x $2.50 + 200 cached x $1.25 + 500 output x $10, per million tokens.
    assert priced.cost == Decimal("0.00725")
    assert priced.status == "priced"
    assert priced.matched_model == "gpt-4o-2024-08-06"
    assert priced.price_id == "openai:gpt-4o-2024-08-06:2024-08-06:default"
    assert priced.breakdown == {
        "input": Decimal("0.002"),
        "cached_input": Decimal("0.00025"),
        "output": Decimal("0.005"),
    }
    assert priced.reasoning_cost == Decimal("0.001")


def test_unknown_model_is_unpriced_not_zero() -> None:
    priced = price_usage(PriceTable.default(), model="gpt-99-ultra", at=AT, usage=Usage(input_tokens=10))
    assert priced.status == "unpriced"
    assert priced.cost is None
    assert priced.price_id is None


def test_empty_usage_is_free() -> None:
    priced = price_usage(PriceTable.default(), model="gpt-99-ultra", at=AT, usage=Usage())
    assert priced.status == "free"
    assert priced.cost == Decimal(0)
