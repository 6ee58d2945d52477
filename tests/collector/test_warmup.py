"""The start-up warm-up runs the real ingest path on a sample span and stores nothing."""

from __future__ import annotations

from pathlib import Path

from spendscope.collector.pricer import Pricer
from spendscope.collector.store import Store
from spendscope.collector.warmup import warm_receiver, warm_store, warm_up
from spendscope.pricing import PriceTable


def test_warm_up_prices_the_sample_and_rolls_back(tmp_path: Path) -> None:
    table = warm_receiver(Pricer(PriceTable.default()))
    assert table is not None and table.num_rows == 1
    row = table.to_pylist()[0]
    assert (row["model"], row["pricing_status"], row["input_tokens"]) == ("gpt-4o-mini", "priced", 10)
    store = Store(str(tmp_path / "w.duckdb"))
    store.migrate()
    try:
        warm_store(store.connection, table)
        warm_store(store.connection, None)
        warm_up(Pricer(PriceTable.default()), store.connection)  # what the writer runs at start
        assert store.connection.execute("SELECT count(*) FROM calls").fetchone() == (0,)
        assert store.connection.execute("SELECT count(*) FROM rollup_state").fetchone() == (0,)
    finally:
        store.close()
