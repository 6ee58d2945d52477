"""Prices derived from the bill: reading line items, amount ÷ quantity, rows and drift (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from spendscope.pricing import PriceTable, Usage, price_usage
from spendscope.pricing.bill import BillLine, LineItem, bill_rows, compare, derive, parse_line_item

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def line(item: str, amount: str, quantity: str, unit: str | None = "tokens", day: date = D1) -> BillLine:
    return BillLine(day, item, Decimal(amount), Decimal(quantity), unit, "usd")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpt-9, input", LineItem("gpt-9", "input", "default")),
        ("GPT-9, input_tokens", LineItem("gpt-9", "input", "default")),
        ("gpt-6-astra, input_tokens", LineItem("gpt-6-astra", "input", "default")),
        ("gpt-9, cached input", LineItem("gpt-9", "cached_input", "default")),
        ("gpt-9, input_cached_tokens", LineItem("gpt-9", "cached_input", "default")),
        ("gpt-9, cache write", LineItem("gpt-9", "cache_write", "default")),
        ("gpt-9, output", LineItem("gpt-9", "output", "default")),
        ("gpt-9, output, batch", LineItem("gpt-9", "output", "batch")),
        ("gpt-9, batch output tokens", LineItem("gpt-9", "output", "batch")),
        ("gpt-9, input (flex)", LineItem("gpt-9", "input", "flex")),
        ("gpt-9, input audio", LineItem("gpt-9", "audio_input", "default")),
        ("gpt-9, output_audio_tokens", LineItem("gpt-9", "audio_output", "default")),
        ("gpt-image-9, output image", LineItem("gpt-image-9", "image_output", "default")),
        ("tts-9, characters", LineItem("tts-9", "characters", "default")),
        ("whisper-9, seconds", LineItem("whisper-9", "seconds", "default")),
        ("dall-e-3, images", LineItem("dall-e-3", "images", "default")),
        ("web search tool calls", LineItem(None, "web_search_calls", "default")),
        ("gpt-9, web search", LineItem(None, "web_search_calls", "default")),
        ("vector store storage", LineItem(None, "storage", "default")),
        ("gpt-9, input, batch, flex", LineItem(None, None, "default")),
        ("gpt-9, reasoning summaries", LineItem(None, None, "default")),
        ("fine-tuning training", LineItem(None, None, "default")),
        (", input", LineItem(None, None, "default")),
    ],
)
def test_line_items_are_read_only_as_far_as_they_say(text: str, expected: LineItem) -> None:
    assert parse_line_item(text) == expected


def test_unit_prices_are_amount_over_quantity_in_the_rows_unit() -> None:
    got = derive(
        [
            line("gpt-9, input", "0.0123", "4920"),  # 2.5 per million tokens
            line("gpt-9, output", "0.06", "6", unit="1000_tokens"),  # 6000 tokens: 10 per million
            line("tts-9, characters", "0.15", "10000", unit="characters"),
            line("whisper-9, seconds", "0.009", "90", unit="duration_seconds"),
            line("whisper-8, seconds", "0.72", "2", unit="duration_hours"),
            line("gpt-9, cached input", "0.01", "3"),  # does not terminate: 18 decimals
        ]
    )
    assert [(p.unit, p.unit_price, p.use, p.field) for p in got] == [
        ("per_mtok", Decimal("2.5"), "prices", "input_per_mtok"),
        ("per_mtok", Decimal(10), "prices", "output_per_mtok"),
        ("per_1m_characters", Decimal(15), "prices", "per_1m_characters"),
        ("per_minute", Decimal("0.006"), "prices", "per_minute"),
        ("per_minute", Decimal("0.006"), "prices", "per_minute"),
        ("per_mtok", Decimal("3333.333333333333333333"), "prices", "cached_input_per_mtok"),
    ]


def test_what_cannot_be_priced_exactly_is_recorded_or_ignored_never_guessed() -> None:
    got = derive(
        [
            line("dall-e-3, images", "0.08", "2", unit="images"),
            line("web search tool calls", "0.05", "5", unit="calls"),
            line("vector store storage", "0.10", "1", unit="gibibyte_hours"),
            line("gpt-9, input", "1", "10", unit="images"),
            line("gpt-9, output", "1", "10", unit=None),
            line("gpt-9, reasoning summaries", "1", "10"),
            BillLine(D1, "gpt-9, cached input", Decimal(1), None, "tokens", "usd"),
            BillLine(D1, "gpt-9, cache write", Decimal(1), Decimal(0), "tokens", "usd"),
            BillLine(D1, "gpt-9, input audio", Decimal(-1), Decimal(5), "tokens", "usd"),
            BillLine(D1, "gpt-9, output audio", Decimal(1), Decimal(5), "tokens", "eur"),
        ]
    )
    assert [(p.use, p.unit, p.unit_price) for p in got[:3]] == [
        ("recorded", "per_image", Decimal("0.04")),
        ("recorded", "per_calls", Decimal("0.01")),
        ("recorded", "per_gibibyte_hours", Decimal("0.1")),
    ]
    assert all(p.use == "ignored" and p.unit_price is None and p.reason for p in got[3:])
    assert bill_rows(got) == ()


def test_two_line_items_claiming_one_price_differently_are_both_ignored() -> None:
    got = derive([line("gpt-9, input", "0.0025", "1000"), line("gpt-9, input tokens", "0.003", "1000")])
    assert {p.use for p in got} == {"ignored"}
    same = derive([line("gpt-9, input", "0.0025", "1000"), line("gpt-9, input tokens", "0.005", "2000")])
    assert {p.use for p in same} == {"prices"}


def test_rows_apply_from_their_day_until_a_newer_one_and_back_before_the_first() -> None:
    prices = derive(
        [
            line("gpt-9, input", "2", "1000000", day=D2),
            line("gpt-9, output", "8", "1000000", day=D2),
            line("gpt-9, input", "2", "1000000", day=D3),  # unchanged: no new row
            line("gpt-9, cached input", "0.5", "1000000", day=D3),  # first seen later: reaches back
            line("gpt-9, output", "6", "1000000", day=date(2026, 3, 5)),
            line("gpt-9, input, batch", "1", "1000000", day=D2),
        ]
    )
    rows = bill_rows(prices)
    assert [
        (r.tier, r.valid_from, r.input_per_mtok, r.cached_input_per_mtok, r.output_per_mtok) for r in rows
    ] == [
        ("batch", D2, Decimal(1), None, None),
        ("default", D2, Decimal(2), Decimal("0.5"), Decimal(8)),
        ("default", date(2026, 3, 5), Decimal(2), Decimal("0.5"), Decimal(6)),
    ]
    assert all(r.origin == "bill" and r.exact and r.price_id.startswith("bill:gpt-9:") for r in rows)
    table = PriceTable.default().with_bill(rows)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    for day, cost in ((D1, 10), (D2, 10), (D3, 10), (date(2026, 3, 4), 10), (date(2026, 3, 9), 8)):
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        priced = price_usage(table, "gpt-9", at, usage)
        assert (priced.cost, priced.price_origin) == (Decimal(cost), "bill"), day
    # The bill's rows are exact: a kind it never showed is unknown, not billed like input.
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert price_usage(table, "gpt-9", at, Usage(input_tokens=10, cached_input_tokens=5)).status == "priced"
    write = price_usage(table, "gpt-9", at, Usage(input_tokens=10, cache_write_input_tokens=5))
    assert write.status == "unpriced" and write.cost is None
    flex = price_usage(table, "gpt-9", at, Usage(input_tokens=10), service_tier="flex")
    assert flex.status == "unpriced"
    # A dated snapshot of a billed model is priced like the model, as the table does.
    assert price_usage(table, "gpt-9-2026-03-01", at, Usage(input_tokens=10**6)).cost == Decimal(2)


def test_a_known_model_is_compared_never_priced_by_the_bill() -> None:
    prices = derive(
        [
            line("gpt-4o-2024-08-06, input", "2.25", "1000000", day=date(2026, 3, 1)),
            line("gpt-4o-2024-08-06, output", "10", "1000000", day=date(2026, 3, 1)),
            line("gpt-4o-2024-08-06, output audio", "1", "1000", day=date(2026, 3, 1)),
        ]
    )
    base = PriceTable.default()
    table = base.with_bill(bill_rows(prices))
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    priced = price_usage(table, "gpt-4o-2024-08-06", at, Usage(input_tokens=10**6))
    assert priced.price_origin == "reviewed" and priced.cost == Decimal("2.5")
    assert not table.priced_by_bill("gpt-4o-2024-08-06")
    assert [s.row.origin for s in table.shadowed()] == ["bill"]
    first, second, third = (compare(base, p) for p in prices)
    assert first is not None and second is not None and third is not None
    assert first.row.price_id.startswith("openai:gpt-4o") and first.table_unit_price == Decimal("2.5")
    assert first.drift == Decimal("-0.1") and first.exceeds(Decimal("2.25"), Decimal("0.02"))
    assert second.drift == 0 and not second.exceeds(Decimal(10), Decimal("0.02"))
    assert third.table_unit_price is None and third.drift is None  # the table has no audio price
    unknown = derive([line("gpt-9, input", "1", "1000000")])
    assert compare(base, unknown[0]) is None


def test_a_blend_of_long_context_rates_is_no_drift() -> None:
    table = PriceTable.default()
    model = next(
        r["model"]
        for r in table.rows(datetime(2026, 6, 1, tzinfo=UTC))
        if r["long_context_threshold"] is not None
    )
    row = table.lookup(model, datetime(2026, 6, 1, tzinfo=UTC))
    assert row is not None and row.input_per_mtok is not None and row.long_context_input_per_mtok is not None
    middle = (row.input_per_mtok + row.long_context_input_per_mtok) / 2
    over = row.long_context_input_per_mtok * 2
    for price, drift in ((middle, Decimal(0)), (over, Decimal(1))):
        got = derive([BillLine(date(2026, 6, 1), f"{model}, input", price, Decimal(10**6), "tokens", "usd")])
        cmp = compare(table, got[0])
        assert cmp is not None and cmp.drift == drift
