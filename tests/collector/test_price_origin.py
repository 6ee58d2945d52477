"""Every call keeps its price's origin: calls stored before the column existed get it from their
price_id, and spend by origin is answered from the rollup like any other key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from spendscope.collector import components
from spendscope.collector.queries import run_spend
from spendscope.collector.rollups import roll_dirty_days
from spendscope.collector.store import Store, list_migrations

pytestmark = pytest.mark.server

_IDS = {
    "openai:gpt-4o:2024-05-13:default": "reviewed",
    "override:gpt-4o:2026-01-01:batch": "override",
    "extra:prices-extra.toml:ft:gpt-new:x:2026-01-01:default": "extra:prices-extra.toml",
    "bill:gpt-9:2026-03-01:default": "bill",
    None: None,
}


def _old_database(path: Path) -> None:
    """A database as the collector left it before migration 030."""
    packages = [c.migrations for c in components.load() if c.migrations]
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL)"
    )
    for number, name, sql in list_migrations(packages):
        if number < 30:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, current_timestamp)", [number, name])
    day = date(2026, 3, 2)
    for i, price_id in enumerate(_IDS):
        cost = None if price_id is None else 1
        con.execute(
            "INSERT INTO calls (trace_id, span_id, start_time, day, model, is_error, batch, ingested_at, "
            "price_id, pricing_status, cost_usd) VALUES (?, ?, ?, ?, 'm', false, false, now(), ?, ?, ?)",
            [
                f"{i:032x}",
                f"{i:016x}",
                datetime(2026, 3, 2, 12, i, tzinfo=UTC),
                day,
                price_id,
                "unpriced" if cost is None else "priced",
                cost,
            ],
        )
    con.execute("INSERT INTO rollup_state VALUES (?, false, now())", [day])
    con.close()


def test_old_calls_get_their_origin_and_spend_breaks_down_by_it(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_database(path)
    store = Store(str(path))
    try:
        assert "030_price_origin.sql" in components.migrate(store)
        con = store.connection
        got = dict(con.execute("SELECT price_id, price_origin FROM calls").fetchall())
        assert got == _IDS
        start = datetime(2026, 3, 1, tzinfo=UTC)
        end = start + timedelta(days=3)
        reference, _ = run_spend(con, start, end, ["price_origin"], use_rollup=False)
        assert roll_dirty_days(con, datetime.now(UTC)) == 1  # every day is rolled again
        rows, totals = run_spend(con, start, end, ["price_origin"])
        assert rows == reference
        assert {r["price_origin"]: (r["calls"], r["cost_usd"], r["unpriced_calls"]) for r in rows} == {
            "reviewed": (1, "1", 0),
            "override": (1, "1", 0),
            "extra:prices-extra.toml": (1, "1", 0),
            "bill": (1, "1", 0),
            None: (1, None, 1),
        }
        assert (totals["cost_usd"], totals["unpriced_calls"]) == ("4", 1)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("costs", "expected"),
    [
        ([0, None], None),  # a failed attempt (0) beside an unpriced call: unknown, not $0
        ([0, 0, None, None], None),  # priced at 0 (moderation) beside unpriced calls
        (["0.5", 0, None], "0.5"),  # what the priced calls cost; unpriced_calls says more is missing
        ([0, 0], "0"),  # nothing unpriced: a definite 0
        ([None], None),
    ],
)
def test_an_unpriced_group_never_shows_a_definite_zero(
    tmp_path: Path, costs: list[object], expected: str | None
) -> None:
    store = Store(str(tmp_path / "z.duckdb"))
    try:
        components.migrate(store)
        con = store.connection
        for i, cost in enumerate(costs):
            con.execute(
                "INSERT INTO calls (trace_id, span_id, start_time, day, model, is_error, batch, ingested_at, "
                "pricing_status, cost_usd) VALUES (?, ?, ?, ?, 'm', false, false, now(), ?, ?)",
                [
                    f"{i:032x}",
                    f"{i:016x}",
                    datetime(2026, 3, 2, 12, i, tzinfo=UTC),
                    date(2026, 3, 2),
                    "unpriced" if cost is None else "priced",
                    cost,
                ],
            )
        con.execute("INSERT INTO rollup_state VALUES (?, true, NULL)", [date(2026, 3, 2)])
        assert roll_dirty_days(con, datetime.now(UTC)) == 1
        start = datetime(2026, 3, 2, tzinfo=UTC)
        for use_rollup in (False, True):
            rows, totals = run_spend(con, start, start + timedelta(days=1), ["model"], use_rollup=use_rollup)
            assert rows[0]["cost_usd"] == totals["cost_usd"] == expected
            assert rows[0]["unpriced_calls"] == costs.count(None)
    finally:
        store.close()
