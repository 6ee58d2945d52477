"""Moving committed local rows to the lake: chunks in commit order, exactly once, crash-safe.

The local DuckDB file stays the acknowledgement: a span is acknowledged after its local commit, and
its row waits in the local ``calls`` table (the replica's durable buffer) until it is shipped.
Shipping one chunk is one lake transaction that

1. updates the shared fence row, so shipments of all replicas serialise (a concurrent one conflicts
   at commit and reruns, and then sees this one's rows);
2. inserts the chunk's rows that the lake does not hold yet (by trace and span id, within the
   chunk's start-time range so the catalog's file statistics prune the probe);
3. appends this replica's ledger row (``ship_log``) and marks the days touched for the rollups.

Only after that commit are the chunk's rows deleted from the local file. A crash before the lake
commit ships nothing; a crash after it and before the local delete ships the rows again, and step 2
then stores none of them: nothing is lost, nothing is stored twice, whatever dies when.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spendscope.collector.schema import COLUMNS

__all__ = ["CHUNK_ROWS", "STRATEGIES", "ShipResult", "Strategy", "delete_shipped", "read_chunk", "ship_chunk"]

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


@dataclass(frozen=True, slots=True)
class ShipResult:
    rows: int  # rows the chunk carried
    stored: int  # rows the lake did not have yet
    tries: int  # lake transactions run (more than one after conflicts)


def read_chunk(con: duckdb.DuckDBPyConnection, local_db: str, limit: int = CHUNK_ROWS) -> pa.Table:
    """The oldest committed rows of the local buffer (``local_db``: the quoted name), in commit order."""
    return con.execute(
        f"SELECT {_NAMES} FROM {local_db}.main.calls ORDER BY ingested_at, start_time LIMIT {int(limit)}"
    ).fetch_arrow_table()


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
    chunk: pa.Table,
    strategy: Strategy = "not_exists",
) -> ShipResult:
    """One chunk into the lake in one transaction with the fence and the ledger row (see module doc).

    A commit that conflicts with another replica's (the fence) is rerun from the start, reading the
    lake again; other errors (the catalog unreachable) are raised with nothing committed.
    """
    starts = chunk.column("start_time")
    lo, hi = pc.min(starts).as_py(), pc.max(starts).as_py()
    days = sorted(set(chunk.column("day").to_pylist()))
    con.register("ship_in", chunk)
    try:
        for attempt in range(1, _MAX_TRIES + 1):
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"UPDATE {lake}.main.ship_fence SET seq = seq + 1")
                insert = _insert_sql(lake, strategy)
                row = con.execute(insert, {"lo": lo, "hi": hi} if "$lo" in insert else {}).fetchone()
                stored = int(row[0]) if row else 0
                con.execute(
                    f"INSERT INTO {lake}.main.ship_log VALUES ($r, now(), $n, $s, $lo, $hi)",
                    {"r": replica, "n": chunk.num_rows, "s": stored, "lo": lo, "hi": hi},
                )
                if stored:
                    con.execute(
                        f"DELETE FROM {lake}.main.rollup_state WHERE list_contains($days::DATE[], day)",
                        {"days": days},
                    )
                    con.execute(
                        f"INSERT INTO {lake}.main.rollup_state "
                        "SELECT unnest($days::DATE[]), true, NULL, now()",
                        {"days": days},
                    )
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


def delete_shipped(con: duckdb.DuckDBPyConnection, local_db: str, keys: pa.Table) -> int:
    """Drop shipped rows from the local buffer (in the writer thread); how many."""
    con.register("shipped_keys", keys)
    try:
        row = con.execute(
            f"DELETE FROM {local_db}.main.calls c USING shipped_keys k "
            "WHERE c.trace_id = k.trace_id AND c.span_id = k.span_id"
        ).fetchone()
    finally:
        con.unregister("shipped_keys")
    return int(row[0]) if row else 0
