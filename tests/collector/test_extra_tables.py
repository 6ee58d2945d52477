"""A collector with `[pricing] extra_tables` prices a new model; `pricing reprice` then moves old calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict
from tests.pricing.test_cli import run

MODEL = "gpt-zz-preview"
EXTRA = """schema = 1

[[price]]
model = "gpt-zz-preview"
valid_from = 2020-06-11
input_per_mtok = 2
output_per_mtok = 8
source = "LiteLLM model price map (test), imported 2026-12-07"
checked = 2026-12-07

# Disagrees with the reviewed gpt-4o row: reported, never applied.
[[price]]
model = "gpt-4o"
valid_from = 2024-11-01
input_per_mtok = 1
output_per_mtok = 1
source = "a stale import"
checked = 2026-12-07
"""


def _spans(n: int, when: datetime, feature: str) -> bytes:
    spans = [
        span_dict(
            genai_attrs(
                MODEL,
                **{
                    "gen_ai.usage.input_tokens": 1_000_000,
                    "gen_ai.usage.output_tokens": 1_000_000,
                    "spendscope.feature": feature,
                },
            ),
            start_ns=int(when.timestamp() * 1e9) + i,
        )
        for i in range(n)
    ]
    return make_request(spans).SerializeToString()


def _by_feature(col: CollectorProcess, start: datetime) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = col.get("/api/v1/spend", start=start.isoformat(), group_by="feature").json()["rows"]
    return {r["feature"]: r for r in rows}


def test_extra_table_prices_new_calls_and_reprice_moves_old_ones(tmp_path: Path) -> None:
    db = tmp_path / "extra.duckdb"
    old = datetime.now(UTC) - timedelta(days=2)
    start = old - timedelta(days=1)
    col = CollectorProcess(db).start()
    try:
        assert col.post_otlp(_spans(4, old, "before")).status_code == 200
        before = _by_feature(col, start)["before"]
        assert (before["cost_usd"], before["unpriced_calls"]) == (None, 4)
    finally:
        assert col.terminate() == 0

    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "prices-extra.toml").write_text(EXTRA)
    config = conf_dir / "spendscope.toml"
    config.write_text('[pricing]\nextra_tables = ["prices-extra.toml"]\n')  # relative to the config file
    col2 = CollectorProcess(db, port=col.port, config=config).start()
    try:
        assert col2.post_otlp(_spans(3, datetime.now(UTC), "after")).status_code == 200
        rows = _by_feature(col2, start)
        assert (Decimal(rows["after"]["cost_usd"]), rows["after"]["unpriced_calls"]) == (Decimal(30), 0)
        assert rows["before"]["unpriced_calls"] == 4, "stored calls do not change until repriced"

        prices = col2.get("/api/v1/prices").json()["rows"]
        new = next(r for r in prices if r["model"] == MODEL)
        assert (new["origin"], new["source"]) == (
            "extra:prices-extra.toml",
            "LiteLLM model price map (test), imported 2026-12-07",
        )
        stale = next(r for r in prices if r["model"] == "gpt-4o" and r["origin"] == "extra:prices-extra.toml")
        assert stale["shadowed_by"] == "openai:gpt-4o:2024-10-02:default"
        assert "input_per_mtok" in stale["disagrees_on"]
        reviewed = col2.get("/api/v1/prices", at=datetime.now(UTC).isoformat()).json()["rows"]
        assert (
            next(
                r
                for r in reviewed
                if r["model"] == "gpt-4o" and r["tier"] == "default" and "shadowed_by" not in r
            )["input_per_mtok"]
            == "2.5"
        )
        assert "extra:prices-extra.toml:gpt-4o:2024-11-01:default is not applied" in col2.log.read_text()

        code, text = run(["pricing", "reprice", "--since", start.isoformat(), "--api", col2.url])
        assert code == 0, text
        answer = json.loads(text)
        assert answer["calls_changed"] == 4
        assert answer["changes"][0]["price_id_after"] == f"extra:prices-extra.toml:{MODEL}:2020-06-11:default"
        rows = _by_feature(col2, start)
        assert (Decimal(rows["before"]["cost_usd"]), rows["before"]["unpriced_calls"]) == (Decimal(40), 0)
    finally:
        col2.terminate()
        col2.kill()


def test_a_missing_extra_table_stops_the_collector_with_its_name(tmp_path: Path) -> None:
    config = tmp_path / "spendscope.toml"
    config.write_text('[pricing]\nextra_tables = ["nowhere.toml"]\n')
    col = CollectorProcess(tmp_path / "x.duckdb", config=config)
    try:
        col.start(timeout=20)
    except RuntimeError as exc:
        assert "nowhere.toml" in str(exc)
    else:
        raise AssertionError("the collector started without its extra price table")
    finally:
        col.kill()
