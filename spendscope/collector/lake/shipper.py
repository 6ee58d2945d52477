"""Moving committed local rows to the lake: chunks in commit order, exactly once, crash-safe.

The local DuckDB file stays the acknowledgement: a span is acknowledged after its local commit, and
its row waits in the local ``calls`` table (the replica's durable buffer) until it is shipped.
One shipment, with a fresh ``ship_id``:

1. **claim** (local, through the writer): the chunk's keys go to ``lake_shipping`` under the ship id;
2. **ship** (one lake transaction): update the shared fence row, so shipments of all replicas
   serialise (a concurrent one conflicts at commit and reruns, and then sees this one's rows);
   insert the chunk's rows the lake does not hold yet (by trace and span id, within the chunk's
   start-time range so the catalog's file statistics prune the probe); append the ledger row
   (``ship_log``, with the ship id) and mark the days touched for the rollups;
3. **settle** (local, at the next round): the ship ids found in the lake's ledger have their rows
   and claims deleted from the local file; claims whose ship id is not there (the shipment failed or
   the process died before its commit) are dropped, and their rows ship again.

A crash anywhere loses nothing (the rows stay local until the lake's ledger shows them) and stores
nothing twice (step 2 skips rows the lake holds). Readers never count a row twice either: the read
view hides a local row once its ship id is in the ledger of the lake snapshot they read
(:func:`local_unshipped_sql`), and the ledger commits with the rows.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spendscope.collector.rollups import mark_dirty
from spendscope.collector.schema import COLUMNS

__all__ = [
    "CHUNK_ROWS",
    "LOCAL_TABLES",
    "STRATEGIES",
    "ShipResult",
    "Strategy",
    "claim",
    "confirmed_ships",
    "local_unshipped_sql",
    "pending_ships",
    "read_chunk",
    "settle",
    "ship_chunk",
]

log = logging.getLogger("spendscope.collector.lake.shipper")

# Rows per lake transaction. Commits into DuckLake cost tens of milliseconds whatever their size and
# every commit writes at least one Parquet file, so large ones are both faster and fewer files
# (see docs/benchmarks.md); 50k rows of calls are about 10 MB in memory.
CHUNK_ROWS = 50_000
_MAX_TRIES = 30

Strategy = Literal["not_exists", "merge", "plain"]
# not_exists: INSERT ... WHERE NOT EXISTS (the chosen one, see benchmarks.lake); merge: MERGE INTO ...
# WHEN NOT MATCHED; plain: no check at all (not exactly once; the benchmark's reference point).
STRATEGIES: tuple[Strategy, ...] = ("not_exists", "merge", "plain")
_NAMES = ", ".join(c.name for c in COLUMNS)

# The replica's local bookkeeping (its file, not the lake): who it is, and the rows of shipments
# not yet settled.
LOCAL_TABLES = (
    "CREATE TABLE IF NOT EXISTS lake_identity (replica VARCHAR NOT NULL, instance VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lake_shipping (ship_id VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, "
    "span_id VARCHAR NOT NULL, claimed_at TIMESTAMPTZ NOT NULL)",
)
# How far back the read view looks for its shipments in the ledger: a claim is settled within a
# ship interval of its commit, or at the first round after a restart.
_LEDGER_WINDOW = "INTERVAL 1 DAY"


@dataclass(frozen=True, slots=True)
class ShipResult:
    rows: int  # rows the chunk carried
    stored: int  # rows the lake did not have yet
    tries: int  # lake transactions run (more than one after conflicts)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def local_unshipped_sql(local_db: str, lake: str, replica: str) -> str:
    """The local rows not yet in the lake as the reading transaction sees it (``local_db`` quoted)."""
    return (
        f"SELECT {_NAMES} FROM {local_db}.main.calls l WHERE NOT EXISTS (SELECT 1 FROM "
        f"{local_db}.main.lake_shipping f WHERE f.trace_id = l.trace_id AND f.span_id = l.span_id "
        f"AND f.ship_id IN (SELECT ship_id FROM {lake}.main.ship_log WHERE replica = {_quote(replica)} "
        f"AND shipped_at > now() - {_LEDGER_WINDOW}))"
    )


def read_chunk(con: duckdb.DuckDBPyConnection, local_db: str, limit: int = CHUNK_ROWS) -> pa.Table:
    """The oldest unclaimed rows of the local buffer (``local_db``: the quoted name), in commit order."""
    return con.execute(
        f"SELECT {_NAMES} FROM {local_db}.main.calls l WHERE NOT EXISTS (SELECT 1 FROM "
        f"{local_db}.main.lake_shipping f WHERE f.trace_id = l.trace_id AND f.span_id = l.span_id) "
        f"ORDER BY ingested_at, start_time LIMIT {int(limit)}"
    ).fetch_arrow_table()


def claim(con: duckdb.DuckDBPyConnection, local_db: str, ship_id: str, keys: pa.Table) -> None:
    """Record that shipment ``ship_id`` carries these rows (in the writer thread)."""
    con.register("claim_keys", keys)
    try:
        con.execute(
            f"INSERT INTO {local_db}.main.lake_shipping SELECT $id, trace_id, span_id, now() FROM claim_keys",
            {"id": ship_id},
        )
    finally:
        con.unregister("claim_keys")


def _insert_sql(lake: str, strategy: Strategy) -> str:
    target = f"{lake}.main.calls"
    if strategy == "merge":
        return (
            f"MERGE INTO {target} c USING (SELECT * FROM ship_in ORDER BY start_time) s "
            "ON c.trace_id = s.trace_id AND c.span_id = s.span_id AND c.start_time = s.start_time "
            "AND c.start_time >= $lo AND c.start_time <= $hi WHEN NOT MATCHED THEN INSERT BY NAME"
        )
    where = (
        ""
        if strategy == "plain"
        else f" WHERE NOT EXISTS (SELECT 1 FROM {target} c WHERE c.start_time >= $lo AND c.start_time <= $hi "
        "AND c.trace_id = s.trace_id AND c.span_id = s.span_id)"
    )
    return f"INSERT INTO {target} ({_NAMES}) SELECT {_NAMES} FROM ship_in s{where} ORDER BY s.start_time"


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # a failed COMMIT has already ended the transaction


def ship_chunk(
    con: duckdb.DuckDBPyConnection,
    lake: str,
    replica: str,
    ship_id: str,
    chunk: pa.Table,
    strategy: Strategy = "not_exists",
) -> ShipResult:
    """Step 2 of the module doc: the chunk into the lake in one transaction with fence and ledger.

    A commit that conflicts with another replica's (the fence) is rerun from the start, reading the
    lake again; other errors (the catalog unreachable) are raised with nothing committed.
    """
    starts = chunk.column("start_time")
    lo, hi = pc.min(starts).as_py(), pc.max(starts).as_py()
    days = sorted(set(chunk.column("day").to_pylist()))
    insert = _insert_sql(lake, strategy)
    con.register("ship_in", chunk)
    try:
        for attempt in range(1, _MAX_TRIES + 1):
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"UPDATE {lake}.main.ship_fence SET seq = seq + 1")
                row = con.execute(insert, {"lo": lo, "hi": hi} if "$lo" in insert else {}).fetchone()
                stored = int(row[0]) if row else 0
                con.execute(
                    f"INSERT INTO {lake}.main.ship_log VALUES ($id, $r, now(), $n, $s, $lo, $hi)",
                    {"id": ship_id, "r": replica, "n": chunk.num_rows, "s": stored, "lo": lo, "hi": hi},
                )
                if stored:
                    mark_dirty(con, days, lake_table=f"{lake}.main.rollup_state")
                con.execute("COMMIT")
                return ShipResult(chunk.num_rows, stored, attempt)
            except duckdb.TransactionException as exc:
                _rollback(con)
                if attempt == _MAX_TRIES:
                    raise
                log.debug("shipment conflicted (%s); rerunning", exc)
                time.sleep(random.uniform(0.01, 0.05 * min(attempt, 10)))
            except BaseException:
                _rollback(con)
                raise
        raise AssertionError("unreachable")
    finally:
        con.unregister("ship_in")


def pending_ships(con: duckdb.DuckDBPyConnection, local_db: str) -> list[str]:
    """The ship ids with claims in the local file."""
    return [
        str(r[0])
        for r in con.execute(f"SELECT DISTINCT ship_id FROM {local_db}.main.lake_shipping").fetchall()
    ]


def confirmed_ships(con: duckdb.DuckDBPyConnection, lake: str, ship_ids: Sequence[str]) -> list[str]:
    """Which of ``ship_ids`` the lake's ledger holds (a fresh lake snapshot)."""
    if not ship_ids:
        return []
    rows = con.execute(
        f"SELECT ship_id FROM {lake}.main.ship_log WHERE list_contains($ids, ship_id)",
        {"ids": list(ship_ids)},
    ).fetchall()
    return [str(r[0]) for r in rows]


def settle(
    con: duckdb.DuckDBPyConnection, local_db: str, shipped: Sequence[str], failed: Sequence[str]
) -> int:
    """Step 3 (in the writer thread): delete the rows and claims of ``shipped`` ship ids, drop the
    claims of ``failed`` ones; the number of rows deleted."""
    deleted = 0
    con.execute("BEGIN TRANSACTION")
    try:
        if shipped:
            row = con.execute(
                f"DELETE FROM {local_db}.main.calls c USING {local_db}.main.lake_shipping f "
                "WHERE list_contains($ids, f.ship_id) AND c.trace_id = f.trace_id AND c.span_id = f.span_id",
                {"ids": list(shipped)},
            ).fetchone()
            deleted = int(row[0]) if row else 0
        ids = [*shipped, *failed]
        if ids:
            con.execute(
                f"DELETE FROM {local_db}.main.lake_shipping WHERE list_contains($ids, ship_id)", {"ids": ids}
            )
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    return deleted
