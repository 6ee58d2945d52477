"""The order of price origins: reviewed rows with overrides first, extra tables after, never replaced."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendscope.pricing import PriceRow, PriceTable
from spendscope.pricing.loading import PriceData
from tests.pricing.test_cli import run

MODELS = ("m-a", "m-b", "m-c")
DAYS = tuple(date(2026, 1, d) for d in (1, 5, 10, 20))


def _row(model: str, day: date, price: int, origin: str) -> PriceRow:
    return PriceRow(
        model=model,
        tier="default",
        valid_from=day,
        source="test",
        checked=day,
        origin=origin,
        input_per_mtok=Decimal(price),
    )


def _rows(origin: str) -> st.SearchStrategy[list[PriceRow]]:
    keys = st.lists(st.tuples(st.sampled_from(MODELS), st.sampled_from(DAYS)), unique=True, max_size=6)
    return keys.flatmap(
        lambda ks: st.lists(st.integers(1, 99), min_size=len(ks), max_size=len(ks)).map(
            lambda ps: [_row(m, d, p, origin) for (m, d), p in zip(ks, ps, strict=True)]
        )
    )


def _toml(rows: list[PriceRow]) -> bytes:
    lines = ["schema = 1"]
    for r in rows:
        lines += [
            "[[price]]",
            f"model = {json.dumps(r.model)}",
            f"valid_from = {r.valid_from.isoformat()}",
            f"input_per_mtok = {r.input_per_mtok}",
            'source = "test"',
            f"checked = {r.checked.isoformat()}",
        ]
    return "\n".join(lines).encode()


def _in_force(rows: list[PriceRow], model: str, day: date) -> PriceRow | None:
    found = [r for r in rows if r.model == model and r.valid_from <= day]
    return max(found, key=lambda r: r.valid_from) if found else None


@settings(max_examples=150, deadline=None)
@given(reviewed=_rows("openai"), overrides=_rows("override"), extra1=_rows("x"), extra2=_rows("x"))
def test_resolution_order_holds_for_any_rows(
    reviewed: list[PriceRow], overrides: list[PriceRow], extra1: list[PriceRow], extra2: list[PriceRow]
) -> None:
    table = PriceTable(PriceData(rows=tuple(reviewed), aliases=()), "test")
    if overrides:
        table = table.with_overrides(
            [
                {"model": r.model, "valid_from": r.valid_from, "input_per_mtok": r.input_per_mtok}
                for r in overrides
            ]
        )
    table = table.with_extra_table("one.toml", _toml(extra1)).with_extra_table("two.toml", _toml(extra2))
    # Each origin is a group; a later origin is consulted only for models no earlier one knows.
    groups: list[tuple[list[PriceRow], ...]] = [(overrides, reviewed), (extra1,), (extra2,)]
    for model in MODELS:
        owner = next((g for g in groups if any(r.model == model for rows in g for r in rows)), None)
        for day in (date(2025, 12, 31), *DAYS, date(2026, 2, 1)):
            got = table.row_in_force(model, "default", day)
            if owner is None:
                assert got is None
                continue
            # Within the reviewed group an override in force wins over the bundled row.
            expected = next((r for rows in owner if (r := _in_force(rows, model, day)) is not None), None)
            seen = (got.valid_from, got.input_per_mtok) if got else None
            want = (expected.valid_from, expected.input_per_mtok) if expected else None
            assert seen == want
            if got is not None:
                names = {1: "extra:one.toml", 2: "extra:two.toml"}
                index = next(i for i, g in enumerate(groups) if g is owner)
                assert got.origin == names[index] if index else got.origin in ("openai", "override")
    # Every extra row of a model an earlier origin knows is reported, never applied.
    reviewed_models = {r.model for r in reviewed + overrides}
    shadowed = {(s.row.origin, s.row.model, s.row.valid_from) for s in table.shadowed()}
    expected_shadowed = {
        ("extra:one.toml", r.model, r.valid_from) for r in extra1 if r.model in reviewed_models
    }
    extra1_models = {r.model for r in extra1}
    expected_shadowed |= {
        ("extra:two.toml", r.model, r.valid_from)
        for r in extra2
        if r.model in reviewed_models or r.model in extra1_models
    }
    assert shadowed == expected_shadowed


def test_pricing_list_shows_extra_rows_and_the_disagreement(tmp_path: Path) -> None:
    (tmp_path / "prices-extra.toml").write_text(
        "schema = 1\n"
        '[[price]]\nmodel = "gpt-new-1"\nvalid_from = 2026-01-01\ninput_per_mtok = 1\noutput_per_mtok = 4\n'
        'source = "imported"\nchecked = 2026-12-01\n'
        '[[price]]\nmodel = "gpt-4o"\nvalid_from = 2026-01-01\ninput_per_mtok = 1\noutput_per_mtok = 4\n'
        'source = "imported"\nchecked = 2026-12-01\n'
    )
    config = tmp_path / "conf" / "spendscope.toml"
    config.parent.mkdir()
    config.write_text('[pricing]\nextra_tables = ["../prices-extra.toml"]\n')
    code, text = run(["pricing", "list", "--json", "--at", "2026-06-01", "--config", str(config)])
    assert code == 0, text
    doc = json.loads(text)
    new = next(r for r in doc["rows"] if r["model"] == "gpt-new-1")
    assert (new["origin"], new["price_id"]) == (
        "extra:../prices-extra.toml",
        "extra:../prices-extra.toml:gpt-new-1:2026-01-01:default",
    )
    assert "shadowed_by" not in new
    hidden = next(r for r in doc["rows"] if r["model"] == "gpt-4o" and r["origin"].startswith("extra:"))
    assert hidden["shadowed_by"] == "openai:gpt-4o:2024-10-02:default"
    assert hidden["disagrees_on"] == ["input_per_mtok", "cached_input_per_mtok", "output_per_mtok"]
    assert [s["price_id"] for s in doc["shadowed"]] == [hidden["price_id"]]
    code, text = run(["pricing", "list", "--at", "2026-06-01", "--config", str(config)])
    assert "extra:../prices-extra.toml:gpt-4o:2026-01-01:default is not applied" in text
    assert "openai:gpt-4o:2024-10-02:default wins" in text


def test_extra_tables_config_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "spendscope.toml"
    config.write_text('[pricing]\nextra_tables = ["missing.toml"]\n')
    assert run(["pricing", "list", "--config", str(config)])[0] == 2
    assert "cannot read 'missing.toml'" in capsys.readouterr().err
    config.write_text("[pricing]\nextra_tables = 3\n")
    assert run(["pricing", "list", "--config", str(config)])[0] == 2
    assert "pricing.extra_tables must be a list of file names" in capsys.readouterr().err


def test_collector_config_resolves_extra_tables_next_to_the_config_file(tmp_path: Path) -> None:
    from spendscope.collector.config import ConfigError, load_config

    config = tmp_path / "etc" / "spendscope.toml"
    config.parent.mkdir()
    config.write_text('[pricing]\nextra_tables = ["prices-extra.toml", "../shared/more.toml"]\n')
    refs = load_config(config, env={}).pricing_extra_tables
    assert [(r.label, r.path) for r in refs] == [
        ("prices-extra.toml", str(tmp_path / "etc" / "prices-extra.toml")),
        ("../shared/more.toml", str(tmp_path / "etc" / ".." / "shared" / "more.toml")),
    ]
    for bad, message in (('"one.toml"', "must be a list of file names"), ('["a.toml", "a.toml"]', "twice")):
        config.write_text(f"[pricing]\nextra_tables = {bad}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(config, env={})
