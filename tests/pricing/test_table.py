"""The data file, its validation, matching rules, overrides and the JSON rows."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from spendscope.pricing import PriceDataError, PriceTable, Usage, price_usage
from spendscope.pricing.loading import load_bundled, parse_data
from spendscope.pricing.matching import strip_snapshot

AT = datetime(2026, 11, 1, tzinfo=UTC)
PLAIN_DECIMAL = re.compile(r"^\d+(\.\d+)?$")


# --- the bundled data ---------------------------------------------------------------------------


def test_every_row_is_sourced_checked_and_sane() -> None:
    data, _ = load_bundled()
    for row in data.rows:
        assert row.source.strip() and isinstance(row.checked, date), row.price_id
        if row.input_per_mtok is not None and row.cached_input_per_mtok is not None:
            assert row.cached_input_per_mtok <= row.input_per_mtok, row.price_id
        if row.long_context_threshold is not None:
            assert row.long_context_input_per_mtok is not None, row.price_id
            for base, long in [
                ("input_per_mtok", "long_context_input_per_mtok"),
                ("cached_input_per_mtok", "long_context_cached_input_per_mtok"),
                ("cache_write_per_mtok", "long_context_cache_write_per_mtok"),
                ("output_per_mtok", "long_context_output_per_mtok"),
            ]:
                b, lc = row.money(base), row.money(long)
                if b is not None and lc is not None:
                    assert lc >= b, row.price_id  # the cliff never makes a call cheaper


def test_every_alias_points_at_a_priced_model() -> None:
    table = PriceTable.default()
    for alias, target in table.aliases.items():
        assert table.resolve(target) is not None, alias
        assert table.resolve(alias) is not None, alias


@pytest.mark.parametrize(
    "model",
    [
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-5-pro",
        "gpt-5.1",
        "gpt-5.2",
        "gpt-5.2-pro",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5.4-nano",
        "gpt-5.4-pro",
        "gpt-5.5",
        "gpt-5.5-pro",
        "gpt-5.6-sol",
        "gpt-5.6-terra",
        "gpt-5.6-luna",
        "gpt-6-astra",
        "gpt-6-sol",
        "gpt-6-luna",
        "gpt-6.1-sol",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "o1",
        "o1-mini",
        "o1-pro",
        "o3",
        "o3-mini",
        "o3-pro",
        "o4-mini",
        "gpt-4-turbo",
        "gpt-4",
        "gpt-3.5-turbo",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
        "gpt-realtime",
        "gpt-4o-realtime-preview",
        "gpt-4o-mini-realtime-preview",
        "gpt-audio",
        "gpt-4o-audio-preview",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "whisper-1",
        "tts-1",
        "tts-1-hd",
        "gpt-4o-mini-tts",
        "dall-e-3",
        "dall-e-2",
        "gpt-image-1",
        "gpt-image-1.5",
    ],
)
def test_coverage_of_current_models(model: str) -> None:
    assert PriceTable.default().lookup(model, AT) is not None


def test_rows_json_shape_and_plain_decimals() -> None:
    table = PriceTable.default()
    every = table.rows()
    now = table.rows(AT)
    assert len(every) > len(now) > 100
    for r in every:
        for key in (
            "model",
            "valid_from",
            "valid_to",
            "input_per_mtok",
            "cached_input_per_mtok",
            "output_per_mtok",
            "tier",
            "batch",
            "source",
            "checked",
            "price_id",
        ):
            assert key in r
        for key, value in r.items():
            if key.endswith(("_per_mtok", "per_1m_characters", "per_minute")) and value is not None:
                assert PLAIN_DECIMAL.match(value), (r["price_id"], key, value)
    o3 = [r for r in every if r["model"] == "o3" and r["tier"] == "default"]
    assert [(r["valid_from"], r["valid_to"]) for r in o3] == [
        ("2025-04-16", "2025-06-10"),
        ("2025-06-10", None),
    ]
    assert all(r["valid_to"] is None for r in now)
    assert len({(r["model"], r["tier"]) for r in now}) == len(now)


# --- matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("GPT-4o-Mini", "gpt-4o-mini"),
        ("openai/gpt-4o", "gpt-4o"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-5.6-sol-2026-09-01", "gpt-5.6-sol"),
        ("gpt-5.6", "gpt-5.6-sol"),
        ("gpt-35-turbo-16k", "gpt-3.5-turbo-16k"),
        ("gpt-4o-minix", None),
        ("gpt-4o-mini-foo", None),
        ("gpt-4o-2024", None),
        ("gpt-5.7", None),
        ("o3-mini-high", None),
        ("", None),
    ],
)
def test_matching_is_exact_then_snapshot_then_alias_never_prefix(name: str, expected: str | None) -> None:
    assert PriceTable.default().resolve(name) == expected


def test_strip_snapshot_forms() -> None:
    assert strip_snapshot("gpt-4o-2024-08-06") == "gpt-4o"
    assert strip_snapshot("gpt-3.5-turbo-0125") == "gpt-3.5-turbo"
    assert strip_snapshot("gpt-4-0125-preview") is None
    assert strip_snapshot("davinci-002") is None


# --- overrides ------------------------------------------------------------------------------------


def test_negotiated_discount_override_with_its_own_valid_from() -> None:
    base = PriceTable.default()
    table = base.with_overrides(
        [
            {
                "model": "gpt-4o",
                "valid_from": "2026-06-01",
                "input_per_mtok": "2.00",
                "output_per_mtok": 8.0,
                "cached_input_per_mtok": "1.00",
                "source": "MSA 2026 discount",
            }
        ]
    )
    assert table.version != base.version
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    after = price_usage(table, "gpt-4o-2024-11-20", datetime(2026, 7, 1, tzinfo=UTC), u)
    assert (after.cost, after.price_id) == (Decimal("10"), "override:gpt-4o:2026-06-01:default")
    before = price_usage(table, "gpt-4o", datetime(2026, 5, 31, tzinfo=UTC), u)
    assert (before.cost, before.price_id) == (Decimal("12.5"), "openai:gpt-4o:2024-10-02:default")
    # Snapshots with their own bundled row are not touched by a family override.
    assert (
        price_usage(table, "gpt-4o-2024-08-06", AT, u).price_id
        == "openai:gpt-4o-2024-08-06:2024-08-06:default"
    )
    rows = table.rows(AT)
    assert [r["origin"] for r in rows if r["model"] == "gpt-4o" and r["tier"] == "default"] == ["override"]


def test_azure_deployment_alias_and_price_override() -> None:
    table = PriceTable.default().with_overrides(
        [
            {"alias": "prod-chat", "model": "gpt-4o-mini"},
            {
                "model": "my-azure-gpt",
                "valid_from": date(2026, 1, 1),
                "input_per_mtok": 0.165,
                "output_per_mtok": 0.66,
                "source": "Azure price sheet",
            },
        ]
    )
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert price_usage(table, "prod-chat", AT, u).cost == Decimal("0.75")
    assert price_usage(table, "my-azure-gpt", AT, u).cost == Decimal("0.825")
    assert price_usage(PriceTable.default(), "my-azure-gpt", AT, u).status == "unpriced"


def test_version_is_stable_and_order_independent_of_calls() -> None:
    a = PriceTable.default().with_overrides([{"alias": "x", "model": "gpt-4o"}])
    b = PriceTable.default().with_overrides([{"alias": "x", "model": "gpt-4o"}])
    assert a.version == b.version != PriceTable.default().version


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"model": "m", "valid_from": "2026-01-01", "input_per_mtok": "-1"}, "input_per_mtok"),
        ({"model": "m", "valid_from": "2026-01-01", "input_per_mtok": "abc"}, "input_per_mtok"),
        ({"model": "m", "valid_from": "2026-01-01", "input_per_mtk": "1"}, "input_per_mtk"),
        ({"model": "m", "input_per_mtok": "1"}, "valid_from"),
        ({"model": "m", "valid_from": "2026-01-01"}, "at least one price"),
        ({"model": "m", "valid_from": "2026-01-01", "input_per_mtok": 1, "tier": "gold"}, "tier"),
        (
            {"model": "m", "valid_from": "2026-01-01", "input_per_mtok": 1, "long_context_threshold": 10},
            "long_context",
        ),
    ],
)
def test_invalid_overrides_name_the_row_and_key(item: dict[str, object], message: str) -> None:
    with pytest.raises(PriceDataError, match=message) as err:
        PriceTable.default().with_overrides([{"source": "x", **item}])
    assert "pricing.overrides #1" in str(err.value)


def test_duplicate_override_versions_are_rejected() -> None:
    row = {"model": "m", "valid_from": "2026-01-01", "input_per_mtok": 1}
    table = PriceTable.default().with_overrides([row])
    with pytest.raises(PriceDataError, match="two rows"):
        table.with_overrides([row])


def test_data_file_errors_name_file_row_and_key() -> None:
    bad = (
        b'schema = 1\n[[price]]\nmodel = "x"\nvalid_from = 2026-01-01\n'
        b"input_per_mtok = 1\nchecked = 2026-01-01\n"
    )
    with pytest.raises(PriceDataError, match=r"f\.toml: \[\[price\]\] #1 \(model 'x'\): key 'source'"):
        parse_data(bad, where="f.toml")
    with pytest.raises(PriceDataError, match="schema"):
        parse_data(b"schema = 2\n", where="f.toml")
    with pytest.raises(PriceDataError, match="not valid TOML"):
        parse_data(b"[[price]\n", where="f.toml")
