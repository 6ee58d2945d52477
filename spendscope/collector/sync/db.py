"""Reads and writes of the sync's tables (migration 010). Thin: SQL in, plain values out.

DuckDB hands TIMESTAMPTZ values to Python only with pytz installed, so reads go through
``epoch()`` and writes pass aware datetimes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from spendscope.collector.sync.parse import METRICS, CostRow, UsageRow

__all__ = [
    "RUN_COLUMNS",
    "RUN_COUNTS",
    "EndpointState",
    "WriteCounts",
    "finish_run",
    "load_state",
    "mark_interrupted",
    "save_state",
    "start_run",
    "utc",
    "write_cost_page",
    "write_usage_page",
]


# The counters a sync run reports, summed over its endpoints (sync_runs columns and the API answer).
RUN_COUNTS: tuple[str, ...] = (
    "requests",
    "retries",
    "pages",
    "buckets",
    "rows_read",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
)
# The sync_runs columns a run reports (migration 010); the outcome is every one after started_at.
RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "trigger",
    "status",
    "started_at",
    "finished_at",
    "duration_s",
    "window_start",
    "window_end",
    *RUN_COUNTS,
    "errors",
    "error",
    "details",
)
_OUTCOME_COLUMNS = ("status", *RUN_COLUMNS[RUN_COLUMNS.index("finished_at") :])


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _day(ts: int) -> date:
    return utc(ts).date()


def _raw(obj: Mapping[str, Any]) -> str:
    # Amounts arrive as Decimal (exact parsing); the audit copy writes them as strings.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class EndpointState:
    synced_through: int | None
    resume_from: int | None


@dataclass(slots=True)
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


def load_state(con: duckdb.DuckDBPyConnection, endpoint: str) -> EndpointState:
    row = con.execute(
        "SELECT epoch(synced_through), epoch(resume_from) FROM sync_state WHERE endpoint = ?", [endpoint]
    ).fetchone()
    if row is None:
        return EndpointState(None, None)
    return EndpointState(None if row[0] is None else int(row[0]), None if row[1] is None else int(row[1]))


def save_state(
    con: duckdb.DuckDBPyConnection,
    endpoint: str,
    *,
    synced_through: int | None,
    resume_from: int | None,
    run_id: int,
    now: float,
) -> None:
    # Delete and insert rather than an upsert: the same SQL serves the lake, which has no keys.
    con.execute("DELETE FROM sync_state WHERE endpoint = ?", [endpoint])
    con.execute(
        "INSERT INTO sync_state VALUES (?, ?, ?, ?, ?)",
        [
            endpoint,
            None if synced_through is None else utc(synced_through),
            None if resume_from is None else utc(resume_from),
            run_id,
            utc(now),
        ],
    )


def _replace(
    con: duckdb.DuckDBPyConnection,
    table: str,
    scope_sql: str,
    scope_args: Sequence[Any],
    lo: int,
    hi: int,
    compare_cols: Sequence[str],
    new: Mapping[tuple[int, str], tuple[Any, ...]],
    insert: Callable[[Iterable[tuple[int, str]]], None],
) -> WriteCounts:
    """Make the rows of ``[lo, hi)`` exactly ``new``: unchanged rows are left alone, so a repeated read
    writes nothing and the counts say what the API changed."""
    cols = ", ".join(compare_cols)
    old = {
        (int(r[0]), str(r[1])): tuple(r[2:])
        for r in con.execute(
            f"SELECT bucket_start_s, group_key, {cols} FROM {table} "
            f"WHERE {scope_sql} bucket_start_s >= ? AND bucket_start_s < ?",
            [*scope_args, lo, hi],
        ).fetchall()
    }
    gone = [k for k in old if k not in new]
    changed = [k for k, v in new.items() if k in old and old[k] != v]
    added = [k for k in new if k not in old]
    stale = gone + changed
    if stale:
        con.executemany(
            f"DELETE FROM {table} WHERE {scope_sql} bucket_start_s = ? AND group_key = ?",
            [[*scope_args, s, g] for s, g in stale],
        )
    if changed or added:
        insert(changed + added)
    return WriteCounts(inserted=len(added), updated=len(changed), deleted=len(gone))


_USAGE_COMPARE = (*METRICS, "estimated_cost_usd", "price_id", "pricing_status", "raw")


def write_usage_page(
    con: duckdb.DuckDBPyConnection,
    endpoint: str,
    span: tuple[int, int],
    width: int,
    rows: Sequence[tuple[UsageRow, tuple[Decimal | None, str | None, str]]],
) -> WriteCounts:
    """Replace the stored rows of ``endpoint`` whose bucket starts in ``span`` with ``rows``."""
    values: dict[tuple[int, str], tuple[Any, ...]] = {}
    full: dict[tuple[int, str], list[Any]] = {}
    for row, (cost, price_id, status) in rows:
        key = (row.bucket_start, row.group_key)
        metrics = [row.metrics.get(m) for m in METRICS]
        raw = _raw(row.raw)
        values[key] = (*metrics, cost, price_id, status, raw)
        # Buckets are stored with their nominal end: the API cuts the newest one at "now", which
        # would otherwise make every re-read look like a change.
        end = (row.bucket_start // width + 1) * width
        d = row.dims
        full[key] = [
            endpoint,
            utc(row.bucket_start),
            utc(end),
            row.bucket_start,
            end,
            _day(row.bucket_start),
            row.group_key,
            d.get("project_id"),
            d.get("user_id"),
            d.get("api_key_id"),
            d.get("model"),
            d.get("batch"),
            d.get("service_tier"),
            json.dumps(dict(row.extra_dims), sort_keys=True) if row.extra_dims else None,
            *metrics,
            cost,
            price_id,
            status,
            raw,
        ]

    def insert(keys: Iterable[tuple[int, str]]) -> None:
        marks = ", ".join("?" * (14 + len(METRICS) + 4))
        con.executemany(f"INSERT INTO usage_buckets VALUES ({marks})", [full[k] for k in keys])

    # Stored values come back as DuckDB types: compare like with like.
    normalized = {k: _norm(v) for k, v in values.items()}
    return _replace(
        con, "usage_buckets", "endpoint = ? AND", [endpoint], *span, _USAGE_COMPARE, normalized, insert
    )


_COST_COMPARE = ("amount", "currency", "quantity", "quantity_unit", "raw")


def write_cost_page(
    con: duckdb.DuckDBPyConnection, span: tuple[int, int], rows: Sequence[CostRow]
) -> WriteCounts:
    """Replace the stored cost rows whose bucket starts in ``span`` with ``rows``."""
    merged: dict[tuple[int, str], CostRow] = {}
    for row in rows:
        key = (row.bucket_start, row.group_key)
        prev = merged.get(key)
        if prev is not None:
            # The API should never repeat a group inside a bucket; if it does, the amounts add up.
            total = None if prev.amount is None or row.amount is None else prev.amount + row.amount
            merged[key] = dataclasses.replace(prev, amount=total)
        else:
            merged[key] = row
    values: dict[tuple[int, str], tuple[Any, ...]] = {}
    full: dict[tuple[int, str], list[Any]] = {}
    for key, row in merged.items():
        raw = _raw(row.raw)
        values[key] = (row.amount, row.currency, row.quantity, row.quantity_unit, raw)
        end = (row.bucket_start // 86400 + 1) * 86400
        full[key] = [
            utc(row.bucket_start),
            utc(end),
            row.bucket_start,
            end,
            _day(row.bucket_start),
            row.group_key,
            row.dims.get("project_id"),
            row.dims.get("api_key_id"),
            row.dims.get("line_item"),
            *values[key],
        ]

    def insert(keys: Iterable[tuple[int, str]]) -> None:
        con.executemany(f"INSERT INTO cost_buckets VALUES ({', '.join('?' * 14)})", [full[k] for k in keys])

    normalized = {k: _norm(v) for k, v in values.items()}
    return _replace(con, "cost_buckets", "", [], *span, _COST_COMPARE, normalized, insert)


def _norm(values: tuple[Any, ...]) -> tuple[Any, ...]:
    # DECIMAL(38,12) reads back quantized; compare at that scale so an unchanged amount is unchanged.
    q = Decimal("1e-12")
    return tuple(v.quantize(q) if isinstance(v, Decimal) else v for v in values)


def mark_interrupted(con: duckdb.DuckDBPyConnection) -> int:
    """Runs still marked running belong to a process that died (the collector is the only writer)."""
    row = con.execute("SELECT count(*) FROM sync_runs WHERE status = 'running'").fetchone()
    if not row or not row[0]:
        return 0
    # No RETURNING: the same SQL serves the lake, whose tables do not support it.
    con.execute(
        "UPDATE sync_runs SET status = 'interrupted', error = coalesce(error, "
        "'the collector stopped during this run; the next run resumes where it stopped') "
        "WHERE status = 'running'"
    )
    return int(row[0])


def start_run(con: duckdb.DuckDBPyConnection, trigger: str, now: float) -> int:
    row = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM sync_runs").fetchone()
    run_id = int(row[0]) if row else 1
    con.execute(
        "INSERT INTO sync_runs (run_id, trigger, status, started_at) VALUES (?, ?, 'running', ?)",
        [run_id, trigger, utc(now)],
    )
    return run_id


def finish_run(con: duckdb.DuckDBPyConnection, run_id: int, record: Mapping[str, Any]) -> None:
    """Write the run's outcome; ``record`` holds the sync_runs columns by name."""
    cols = _OUTCOME_COLUMNS
    args = [record.get(c) for c in cols]
    con.execute(
        f"UPDATE sync_runs SET {', '.join(f'{c} = ?' for c in cols)} WHERE run_id = ?", [*args, run_id]
    )
