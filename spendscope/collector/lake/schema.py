"""The lake's schema: numbered migrations, applied once by the replica that holds the lease first.

Migration 1 is the ``calls`` table, generated from the one column declaration
(:func:`spendscope.collector.schema.create_table_sql`), so the lake keeps exactly the local
columns; the others are ``NNN_name.sql`` files in ``lake/migrations`` (``{lake}`` stands for the
attached catalog's name). Each runs in one lake transaction with its ``schema_migrations`` row.
"""

from __future__ import annotations

import logging

import duckdb

from spendscope.collector.schema import create_table_sql
from spendscope.collector.store import list_migrations

__all__ = ["LAKE_MIGRATIONS", "SHARED_TABLES", "latest_version", "migrate_lake", "schema_version"]

log = logging.getLogger("spendscope.collector.lake")

_PACKAGE = "spendscope.collector.lake.migrations"
_THEN = "-- then:"


def _migrations() -> list[tuple[int, str, str]]:
    files = list_migrations((_PACKAGE,))
    assert all(n > 1 for n, _, _ in files), "lake migration 1 is the generated calls table"
    return [(1, "001_calls", create_table_sql("calls")), *files]


LAKE_MIGRATIONS = _migrations()

# Tables every replica reads from the lake (besides calls and rollup_state, which add the replica's
# own unshipped rows): the rollups, the sync's and the alerts' tables.
SHARED_TABLES: tuple[str, ...] = (
    "rollup_daily",
    "rollup_insights_daily",
    "rollup_latency_daily",
    "rollup_latency_pct_daily",
    "usage_buckets",
    "cost_buckets",
    "sync_runs",
    "sync_state",
    "alert_state",
    "alert_events",
    "alert_deliveries",
    "alert_delivery_attempts",
    "alert_silences",
)


def latest_version() -> int:
    return LAKE_MIGRATIONS[-1][0]


def schema_version(con: duckdb.DuckDBPyConnection, lake: str) -> int:
    """The highest lake migration applied (0 before the first)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = 'schema_migrations'",
        [lake],
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute(f"SELECT coalesce(max(version), 0) FROM {lake}.main.schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate_lake(con: duckdb.DuckDBPyConnection, lake: str) -> list[str]:
    """Apply the lake migrations not yet applied, each in its own transaction; their names."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {lake}.main.schema_migrations "
        "(version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {int(r[0]) for r in con.execute(f"SELECT version FROM {lake}.main.schema_migrations").fetchall()}
    applied: list[str] = []
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    previous = '"' + str(row[0]).replace('"', '""') + '"'
    con.execute(f"USE {lake}")  # the files name their tables unqualified
    try:
        _apply(con, lake, done, applied)
    finally:
        con.execute(f"USE {previous}")
    return applied


def _apply(con: duckdb.DuckDBPyConnection, lake: str, done: set[int], applied: list[str]) -> None:
    for number, name, sql in LAKE_MIGRATIONS:
        if number in done:
            continue
        # A file may have a second part after a "-- then:" line, run in a second transaction with
        # the migration's row (DuckLake refuses table options in the transaction that creates the
        # table); the first part is written to be rerun safely should a crash fall in between.
        parts = [p for p in sql.replace("{lake}", lake).split(_THEN) if p.strip()]
        for i, part in enumerate(parts):
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(part)
                if i == len(parts) - 1:
                    con.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, current_timestamp)", [number, name]
                    )
                con.execute("COMMIT")
            except Exception as exc:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise RuntimeError(f"lake migration {name} failed: {exc}") from exc
        applied.append(name)
        log.info("applied lake migration %s", name)
