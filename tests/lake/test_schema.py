"""The lake's tables have the local tables' columns: calls from the one declaration, the shared tables
(rollups, sync, alerts) as the local migrations make them, minus keys and sequences."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from spendscope.collector.components import migrate
from spendscope.collector.lake.extensions import load_extensions
from spendscope.collector.lake.schema import SHARED_TABLES, latest_version, migrate_lake, schema_version
from spendscope.collector.store import Store
from tests.lake.postgres import Postgres

pytestmark = [pytest.mark.server]


def _columns(con: duckdb.DuckDBPyConnection, db: str, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_name = ? ORDER BY ordinal_position",
        [db, table],
    ).fetchall()
    return [(str(n), str(t)) for n, t in rows]


def test_lake_tables_have_the_local_columns(postgres: Postgres, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "local.duckdb"))
    migrate(store)
    con = store.connection
    load_extensions(con)
    catalog = postgres.catalog(postgres.new_database()).removeprefix("postgres:")
    con.execute(f"ATTACH 'ducklake:postgres:{catalog}' AS lk (DATA_PATH '{tmp_path}/d/')")
    assert schema_version(con, "lk") == 0
    migrate_lake(con, "lk")
    assert schema_version(con, "lk") == latest_version()
    assert migrate_lake(con, "lk") == []  # applied once
    for table in ("calls", *SHARED_TABLES):
        assert _columns(con, "lk", table) == _columns(con, "local", table), table
    # rollup_state keeps when a shipment marked a day (the local one has no shipments).
    assert _columns(con, "lk", "rollup_state") == [
        *_columns(con, "local", "rollup_state"),
        ("marked_at", "TIMESTAMP WITH TIME ZONE"),
    ]
    store.close()
