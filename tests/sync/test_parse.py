"""Pure parsing of Usage/Costs pages: optional fields, drifted meanings, exact money."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from spendscope.collector.sync.parse import (
    Bucket,
    ParseError,
    cost_rows,
    parse_page,
    to_decimal,
    to_int,
    usage_rows,
)

COOKBOOK_2025 = {
    "object": "organization.usage.completions.result",
    "input_tokens": 3718360,
    "output_tokens": 97756,
    "num_model_requests": 3053,
    "project_id": None,
    "user_id": None,
    "api_key_id": None,
    "model": None,
    "batch": None,
    "input_cached_tokens": 76544,
    "input_audio_tokens": 5776,
    "output_audio_tokens": 3166,
}
SPEC_2026 = {
    "object": "organization.usage.completions.result",
    "input_tokens": 5000,
    "input_cached_tokens": 1800,
    "input_cache_write_tokens": 200,
    "input_uncached_tokens": 3000,
    "output_tokens": 1000,
    "input_text_tokens": 2500,
    "output_text_tokens": 800,
    "input_cached_text_tokens": 1500,
    "input_audio_tokens": 300,
    "input_cached_audio_tokens": 100,
    "output_audio_tokens": 100,
    "input_image_tokens": 200,
    "input_cached_image_tokens": 200,
    "output_image_tokens": 100,
    "num_model_requests": 5,
    "project_id": "proj_abc",
    "user_id": "user-abc",
    "api_key_id": "key_abc",
    "model": "gpt-4o-mini-2024-07-18",
    "batch": False,
    "service_tier": "default",
    "some_field_from_the_future": {"x": 1},
}


def _bucket(*results: dict[str, object]) -> Bucket:
    return Bucket(1730419200, 1730505600, tuple(results))


def test_envelope() -> None:
    page = parse_page(
        {
            "object": "page",
            "data": [{"object": "bucket", "start_time": 1, "end_time": 2, "results": None}],
            "has_more": True,
            "next_page": "page_x",
            "unknown": 1,
        }
    )
    assert page.has_more and page.next_page == "page_x" and page.buckets[0].results == ()
    assert parse_page({"data": [], "has_more": False}).next_page is None
    for bad in ([], {"data": None}, {"data": [{"start_time": 5, "end_time": 5}]}, {"data": [1]}):
        with pytest.raises(ParseError):
            parse_page(bad)


def test_2025_fields_absent_are_none_and_audio_kept_inclusive() -> None:
    (row,) = usage_rows("completions", _bucket(COOKBOOK_2025))
    m = row.metrics
    assert m["input_tokens"] == 3718360 and m["cached_input_tokens"] == 76544
    # 2024-12 meaning: input_audio_tokens already includes cached audio.
    assert m["input_audio_tokens"] == 5776 and m["cached_input_audio_tokens"] is None
    assert m["cache_write_input_tokens"] is None and m["input_image_tokens"] is None
    assert row.dims == {
        "project_id": None,
        "user_id": None,
        "api_key_id": None,
        "model": None,
        "batch": None,
        "service_tier": None,
    }


def test_2026_audio_and_image_are_made_inclusive() -> None:
    (row,) = usage_rows("completions", _bucket(SPEC_2026))
    m = row.metrics
    # 2026 meaning: input_audio/image_tokens are uncached; stored inclusive of the cached part.
    assert m["input_audio_tokens"] == 400 and m["cached_input_audio_tokens"] == 100
    assert m["input_image_tokens"] == 400 and m["cached_input_image_tokens"] == 200
    assert m["cache_write_input_tokens"] == 200
    assert row.dims["batch"] is False and row.dims["service_tier"] == "default"


def test_null_absent_and_garbage_are_alike() -> None:
    a = usage_rows("completions", _bucket({"input_tokens": None, "output_tokens": 3}))[0]
    b = usage_rows("completions", _bucket({"output_tokens": 3}))[0]
    c = usage_rows("completions", _bucket({"input_tokens": "many", "output_tokens": 3.0}))[0]
    assert a.metrics == b.metrics == c.metrics
    assert a.group_key == b.group_key == c.group_key


def test_cache_write_split_sums_when_total_absent() -> None:
    r = {"input_tokens": 10, "input_cache_write_30m_tokens": 3, "input_cache_write_12h_tokens": None}
    assert usage_rows("completions", _bucket(r))[0].metrics["cache_write_input_tokens"] == 3


def test_other_endpoints_dimensions() -> None:
    img = {
        "object": "organization.usage.images.result",
        "images": 2,
        "num_model_requests": 2,
        "size": "1024x1024",
        "source": "image.generation",
        "model": "dall-e-3",
    }
    (row,) = usage_rows("images", _bucket(img))
    assert row.metrics["images"] == 2 and row.extra_dims == {
        "size": "1024x1024",
        "source": "image.generation",
    }
    vs = usage_rows("vector_stores", _bucket({"usage_bytes": 1024, "project_id": None}))[0]
    assert vs.metrics["usage_bytes"] == 1024


def test_money_is_exact() -> None:
    doc = json.loads('{"value": 0.1}', parse_float=Decimal)
    assert to_decimal(doc["value"]) == Decimal("0.1")
    assert to_decimal(0.06) == Decimal("0.06")  # shortest repr, not the binary expansion
    assert to_decimal("2.25") == Decimal("2.25")
    assert to_decimal(None) is None and to_decimal(True) is None and to_decimal("nan") is None
    rows = cost_rows(
        _bucket(
            {
                "object": "organization.costs.result",
                "amount": {"value": "0.06", "currency": "USD"},
                "line_item": "gpt-4o, input",
            },
            {"object": "organization.costs.result", "amount": {"value": None}},
            {"object": "organization.costs.result", "amount": None, "project_id": "p", "quantity": 12},
        )
    )
    assert (
        rows[0].amount == Decimal("0.06")
        and rows[0].currency == "usd"
        and rows[0].dims["line_item"] == "gpt-4o, input"
    )
    assert rows[1].amount is None and rows[2].amount is None and rows[2].quantity == Decimal(12)
    assert len({r.group_key for r in rows}) == 3


def test_numbers_that_cannot_be_stored_are_absent_not_errors() -> None:
    # A hostile or broken Usage/Costs answer must not poison every later sync of its window.
    assert to_int(float("inf")) is None and to_int(Decimal("NaN")) is None
    assert to_int(2**70) is None and to_int("1e30") is None and to_int(Decimal("5")) == 5
    assert to_decimal(Decimal("1E+999999")) is None and to_decimal("1e30") is None
    assert to_decimal(float("-inf")) is None and to_decimal("0.06") == Decimal("0.06")
    doc = json.loads('{"value": Infinity, "n": 1e400}', parse_float=Decimal)
    assert to_decimal(doc["value"]) is None and to_int(doc["n"]) is None
