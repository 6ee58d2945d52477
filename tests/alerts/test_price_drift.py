"""The price_drift rule over bill prices derived from stored Costs API line items (real DuckDB)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from spendscope.collector.store import Store
from spendscope.collector.sync.bill import derive_bill
from spendscope.pricing import PriceTable

from .helpers import T0, Clock, engine_for, open_store

RULE = """
[[alerts.rules]]
name = "drift"
kind = "price_drift"
threshold_pct = 5
group_by = ["model"]
renotify = "1d"
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "drift.duckdb")
    yield s
    s.close()


def bill(store: Store, day: date, lines: dict[str, tuple[str, int]]) -> None:
    """Replace the day's stored cost lines (amount, quantity in tokens), then derive as a sync does."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())

    def write(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("DELETE FROM cost_buckets WHERE day = ?", [day])
        for item, (amount, qty) in lines.items():
            con.execute(
                "INSERT INTO cost_buckets VALUES (to_timestamp(?), to_timestamp(?), ?, ?, ?, ?, 'p', NULL, "
                "?, ?, 'usd', ?, 'tokens', '{}')",
                [
                    start,
                    start + 86400,
                    start,
                    start + 86400,
                    day,
                    json.dumps([item]),
                    item,
                    Decimal(amount),
                    qty,
                ],
            )
        derive_bill(con, PriceTable.default(), T0)

    store.run_write(write)


def test_drift_fires_once_per_model_and_resolves_when_the_bill_agrees(store: Store) -> None:
    clock = Clock(T0)
    engine = engine_for(store, clock, RULE)
    yesterday = T0.date() - timedelta(days=1)
    bill(
        store,
        yesterday,
        {
            "gpt-4o-2024-08-06, input": ("2.25", 10**6),  # reviewed 2.50: -10%
            "gpt-4o-2024-08-06, output": ("10", 10**6),  # agrees
            "gpt-4o-mini-2024-07-18, input": ("0.153", 10**6),  # +2%: under the rule's 5%
            "gpt-9, input": ("7", 10**6),  # no table knows it: priced from the bill, no drift
        },
    )
    first = engine.tick()
    assert [(e.kind, e.state.scope_key) for e in first.events] == [("firing", "model=gpt-4o-2024-08-06")]
    message = first.events[0].state.message
    assert "gpt-4o-2024-08-06 input billed 2.25 per_mtok" in message and "says 2.5 (-10.0%)" in message
    assert engine.tick().events == []  # fires once
    clock.advance(hours=1)
    assert engine.tick().events == []
    bill(store, yesterday, {"gpt-4o-2024-08-06, input": ("2.5", 10**6)})
    resolved = engine.tick()
    assert [(e.kind, e.state.scope_key) for e in resolved.events] == [("resolved", "model=gpt-4o-2024-08-06")]


def test_old_bill_days_are_outside_the_window(store: Store) -> None:
    engine = engine_for(store, Clock(T0), RULE)
    bill(store, T0.date() - timedelta(days=8), {"gpt-4o-2024-08-06, input": ("2", 10**6)})
    assert engine.tick().events == []
