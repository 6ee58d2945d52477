"""From decoded spans to committed rows: batch building, the bounded queue and the single writer.

The receiver builds an :class:`IngestBatch` (normalized and priced rows plus rejections) and offers
it to the :class:`Writer`; the queue is bounded by spans, and a full queue refuses the batch so the
receiver can answer 503 with Retry-After. The writer thread takes several queued batches at a time
(group commit), inserts them with one Arrow ``INSERT ... SELECT`` in one transaction, and only then
resolves each batch's future: the HTTP 200 is sent after the commit, never before.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spendscope.collector.normalize import Normalized, Rejected, Row, normalize, rows_from_protobuf
from spendscope.collector.otlp import SpanData, decode_json, decompress
from spendscope.collector.pricer import Pricer, PricingResult, price_unpriced
from spendscope.collector.redact import redact_attributes
from spendscope.collector.rollups import mark_dirty
from spendscope.collector.schema import BATCH_SCHEMA, MAX_TEXT, ROW_FIELDS, ROW_INDEX, insert_sql
from spendscope.collector.store import Store

__all__ = [
    "IngestBatch",
    "IngestResult",
    "ShuttingDown",
    "Writer",
    "build_batch",
    "epoch_dates",
    "insert_batch",
    "mark_days_dirty",
    "prepare_batch",
    "reject_before",
    "rows_to_arrow",
]

log = logging.getLogger("spendscope.collector.ingest")

_MAX_REJECTED_ATTRS = 4096
_TRACE_ID, _SPAN_ID, _START = ROW_INDEX["trace_id"], ROW_INDEX["span_id"], ROW_INDEX["start_ns"]
_SERVICE, _SPAN_NAME = ROW_INDEX["service"], ROW_INDEX["span_name"]
_S = pa.string()

# Idempotency: a retried span has the same start time, so the existence check only needs the
# slice of calls inside the batch's time range, which DuckDB's zone maps prune to a few row groups.
# The batch carries raw integers (times, picodollars): the conversions run in DuckDB's vectorized
# engine instead of per span in Python.
_INSERT_CALLS = insert_sql(
    where="NOT EXISTS (SELECT 1 FROM calls c WHERE c.start_time >= make_timestamp_ns($lo)::TIMESTAMPTZ "
    "AND c.start_time <= make_timestamp_ns($hi)::TIMESTAMPTZ "
    "AND c.trace_id = b.trace_id AND c.span_id = b.span_id)"
)
_NS_PER_DAY = 86_400 * 10**9
_EPOCH_DAY = date(1970, 1, 1)
_REJECTED_SCHEMA = pa.schema(
    [
        ("trace_id", _S),
        ("span_id", _S),
        ("service", _S),
        ("span_name", _S),
        ("reason", _S),
        ("attributes", _S),
    ]
)


class ShuttingDown(RuntimeError):
    """The writer no longer accepts work."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    stored: int  # rows offered to the table (duplicates of stored spans are skipped by the insert)
    rejected: int
    ignored: int  # spans without GenAI attributes: acknowledged, not stored
    messages: tuple[str, ...] = ()


@dataclass(slots=True)
class IngestBatch:
    """One request's worth of work for the writer, prepared before it is queued.

    Everything Python-heavy (normalization, pricing, Arrow conversion, the days touched) is done on
    the receiving side (a thread or a decode worker process), so the writer thread mostly
    waits on DuckDB, which releases the GIL.
    """

    table: pa.Table | None
    rejected: list[tuple[str | None, ...]]
    ignored: int
    days: frozenset[int] = frozenset()
    lo: int = 0
    hi: int = 0
    future: Future[IngestResult] = field(default_factory=Future)

    @property
    def n_rows(self) -> int:
        return 0 if self.table is None else int(self.table.num_rows)

    @property
    def size(self) -> int:
        return self.n_rows + len(self.rejected)

    def result(self) -> IngestResult:
        reasons: dict[str, int] = {}
        for r in self.rejected:
            reason = str(r[4])
            reasons[reason] = reasons.get(reason, 0) + 1
        msgs = tuple(f"{n} span(s): {reason}" for reason, n in sorted(reasons.items()))
        return IngestResult(self.n_rows, len(self.rejected), self.ignored, msgs)


def _service(span: SpanData) -> str | None:
    v = span.resource.get("service.name")
    return None if v is None else str(v)


def prepare_batch(body: bytes, encoding: str, is_json: bool, limit: int, pricer: Pricer) -> IngestBatch:
    """A request body as a batch for the writer: decompress, decode, normalize, price, convert.

    Raises :class:`~spendscope.collector.otlp.DecodeError` or ``TooLargeError`` for the receiver to
    answer. Runs in a decode worker process or a thread, never in the writer.
    """
    raw = decompress(body, encoding, limit)
    decoded = Normalized(spans=decode_json(raw)) if is_json else rows_from_protobuf(raw)
    return build_batch(decoded, pricer)


def build_batch(decoded: Normalized, pricer: Pricer) -> IngestBatch:
    """Normalize what is left, price and convert (runs on the receiving side, not in the writer).

    ``decoded`` holds the rows the decoder's fast path already made and the spans it left for
    :func:`~spendscope.collector.normalize.normalize`.
    """
    rows: list[Row] = list(decoded.rows)
    rejected: list[tuple[str | None, ...]] = []
    ignored = decoded.ignored
    for span in decoded.spans:
        try:
            row = normalize(span)
        except Rejected as exc:
            rejected.append(_rejection(span, str(exc)))
            continue
        if row is None:
            ignored += 1
        else:
            rows.append(row)
    if not rows:
        return IngestBatch(None, rejected, ignored)
    if len({(r[_TRACE_ID], r[_SPAN_ID]) for r in rows}) != len(rows):
        rows = _dedupe(rows)
    pricing = pricer.price_rows(rows)
    try:
        table = rows_to_arrow(rows, pricing)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        # Normalization should make this impossible; if a value still does not fit its column,
        # only its span is refused, not the request with it.
        rows, pricing = _storable(rows, pricing, rejected)
        if not rows:
            return IngestBatch(None, rejected, ignored)
        table = rows_to_arrow(rows, pricing)
    return _batch(table, [r[_START] for r in rows], rejected, ignored)


def _storable(
    rows: list[Row], pricing: list[PricingResult], rejected: list[tuple[str | None, ...]]
) -> tuple[list[Row], list[PricingResult]]:
    """The rows that convert to Arrow one by one; the others are added to ``rejected``."""
    kept: list[Row] = []
    kept_pricing: list[PricingResult] = []
    for row, price in zip(rows, pricing, strict=True):
        try:
            rows_to_arrow([row], [price])
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            values = _rejected_json(dict(zip(ROW_FIELDS, row, strict=True)))
            reason = f"a value does not fit its column: {exc}"
            ids = (row[_TRACE_ID], row[_SPAN_ID])
            rejected.append((*ids, row[_SERVICE], row[_SPAN_NAME], reason, values))
        else:
            kept.append(row)
            kept_pricing.append(price)
    return kept, kept_pricing


def _rejected_json(values: Mapping[str, Any]) -> str:
    """What a rejected span carried, as JSON for ``rejected_spans.attributes``: secrets redacted,
    bounded in size, valid UTF-8 (a lone surrogate, which no JSON column takes, becomes "?")."""
    try:
        text = json.dumps(redact_attributes(values), default=repr, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = "{}"
    if len(text) > _MAX_REJECTED_ATTRS:
        text = json.dumps({"truncated": text[:_MAX_REJECTED_ATTRS]}, ensure_ascii=False)
    return text.encode("utf-8", "replace").decode("utf-8")


def _storable_text(v: Any) -> str | None:
    """A name or service for a rejection record: storable UTF-8, bounded."""
    if v is None:
        return None
    text = (v if isinstance(v, str) else str(v))[:MAX_TEXT]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _rejection(span: SpanData, reason: str) -> tuple[str | None, ...]:
    return (
        span.trace_id.hex()[:64],
        span.span_id.hex()[:32],
        _storable_text(_service(span)),
        _storable_text(span.name),
        _storable_text(reason),
        _rejected_json(span.attributes),
    )


def _batch(
    table: pa.Table, starts: Sequence[int], rejected: list[tuple[str | None, ...]], ignored: int
) -> IngestBatch:
    """A batch of rows whose start times are ``starts``: the days they touch and their range."""
    return IngestBatch(
        table,
        rejected,
        ignored,
        days=frozenset(t // _NS_PER_DAY for t in starts),
        lo=min(starts),
        hi=max(starts),
    )


def reject_before(batch: IngestBatch, first_day: date, reason: str) -> IngestBatch:
    """Move the rows that start before ``first_day`` (UTC) to the batch's rejections.

    Used for spans older than the calls retention: stored, they would re-roll their day from the
    few late calls and replace the rollup that holds the day's real totals.
    """
    cutoff_ns = (first_day - _EPOCH_DAY).days * _NS_PER_DAY
    table = batch.table
    if table is None or batch.lo >= cutoff_ns:
        return batch
    keep = pc.greater_equal(table.column("start_ns"), pa.scalar(cutoff_ns, pa.int64()))
    old = table.filter(pc.invert(keep)).select(["trace_id", "span_id", "service", "span_name"])
    rejected = batch.rejected + [(*ids, reason, "{}") for ids in zip(*old.to_pydict().values(), strict=True)]
    kept = table.filter(keep)
    if not kept.num_rows:
        out = IngestBatch(None, rejected, batch.ignored)
    else:
        out = _batch(kept, kept.column("start_ns").to_pylist(), rejected, batch.ignored)
    out.future = batch.future
    return out


def rows_to_arrow(rows: Sequence[Row], pricing: Sequence[PricingResult]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) + list(zip(*pricing, strict=True))
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, BATCH_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=BATCH_SCHEMA)


def _rejected_table(rejected: Sequence[tuple[str | None, ...]]) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array(col, type=pa.string()) for col in zip(*rejected, strict=True)], schema=_REJECTED_SCHEMA
    )


def insert_batch(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table | None,
    lo: int,
    hi: int,
    rejected: Sequence[tuple[str | None, ...]] = (),
) -> None:
    """Insert an Arrow batch (start times within [lo, hi]) and rejections in the caller's transaction."""
    if table is not None and table.num_rows:
        con.register("batch_in", table)
        try:
            con.execute(_INSERT_CALLS, {"lo": lo, "hi": hi})
        finally:
            con.unregister("batch_in")
    if rejected:
        con.register("rejected_in", _rejected_table(rejected))
        try:
            con.execute(
                "INSERT INTO rejected_spans SELECT current_timestamp, trace_id, span_id, service, span_name, "
                "reason, attributes::JSON FROM rejected_in"
            )
        finally:
            con.unregister("rejected_in")


def epoch_dates(days: Iterable[int]) -> list[date]:
    """UTC days given as days since the epoch, as sorted dates."""
    return sorted(_EPOCH_DAY + timedelta(days=d) for d in days)


def mark_days_dirty(con: duckdb.DuckDBPyConnection, days: Iterable[int]) -> None:
    """Flag UTC days (as days since the epoch) for the rollup job."""
    mark_dirty(con, epoch_dates(days))


def _dedupe(rows: list[Row], seen: set[tuple[str, str]] | None = None) -> list[Row]:
    """Drop repeats of (trace_id, span_id), also those already in ``seen``; the first copy wins."""
    seen = set() if seen is None else set(seen)
    out: list[Row] = []
    for row in rows:
        key = (row[_TRACE_ID], row[_SPAN_ID])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _has_repeats(table: pa.Table) -> bool:
    """Whether a (trace_id, span_id) occurs twice, computed in Arrow (each batch is already unique)."""
    distinct = table.select(["trace_id", "span_id"]).group_by(["trace_id", "span_id"]).aggregate([])
    return bool(distinct.num_rows != table.num_rows)


def _first_copies(table: pa.Table) -> pa.Table:
    """The rows without repeats of a (trace_id, span_id), the first copy kept."""
    seen: set[tuple[str, str]] = set()
    mask = []
    for key in zip(table.column("trace_id").to_pylist(), table.column("span_id").to_pylist(), strict=True):
        mask.append(key not in seen)
        seen.add(key)
    return table.filter(pa.array(mask, type=pa.bool_()))


@dataclass(slots=True)
class _Task:
    fn: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any]


class Writer:
    """The single writer thread with its bounded queue."""

    def __init__(
        self,
        store: Store,
        *,
        max_queue_spans: int,
        batch_spans: int,
        linger_s: float = 0.01,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self._max = max_queue_spans
        self._batch_spans = batch_spans
        self._linger = linger_s
        self._queue: deque[IngestBatch | _Task] = deque()
        self._cond = threading.Condition()
        self._pending = 0
        self._arriving = 0  # requests being decoded that will be offered soon
        self._accepting = True
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="spendscope-writer", daemon=True)
        self._on_commit = on_commit
        # Prices learned after the decode side's table was built (derived from the bill): rows a
        # batch holds as unpriced get them here, just before they are stored. Replaced as a whole.
        self.late_pricer: Pricer | None = None
        # Days committed to since the last rollup pass: already flagged dirty (no upsert per commit),
        # and still busy, so the rollup job leaves them for its next pass.
        self.marked_days: set[int] = set()
        self.last_commit: datetime | None = None
        self.commits = 0
        self.rows_committed = 0
        self.rejected_committed = 0
        self.refused = 0

    # --- producer side -----------------------------------------------------------------------
    @property
    def pending_spans(self) -> int:
        return self._pending

    @property
    def saturated(self) -> bool:
        return self._pending >= self._max

    def offer(self, batch: IngestBatch) -> bool:
        """Queue a batch; False when the queue is full (the caller answers 503)."""
        with self._cond:
            if not self._accepting:
                raise ShuttingDown("the collector is shutting down")
            if self._pending >= self._max:
                self.refused += 1
                return False
            self._queue.append(batch)
            self._pending += batch.size
            self._cond.notify()
        return True

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark a request as on its way (being decoded) until the block ends.

        The writer lingers for more work only while some is on its way: when every request is
        already queued, waiting would only add latency and leave the decoders idle.
        """
        with self._cond:
            self._arriving += 1
        try:
            yield
        finally:
            with self._cond:
                self._arriving -= 1
                self._cond.notify()

    def submit(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._cond:
            if self._stop:
                raise ShuttingDown("the writer has stopped")
            self._queue.append(_Task(fn, fut))
            self._cond.notify()
        return fut

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop_accepting(self) -> None:
        with self._cond:
            self._accepting = False

    def stop(self, timeout: float = 60.0) -> bool:
        """Refuse new batches, drain and commit what is queued, then end the thread."""
        with self._cond:
            self._accepting = False
            self._stop = True
            self._cond.notify_all()
        if not self._thread.is_alive():
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- writer thread -------------------------------------------------------------------------
    def _queued_spans(self) -> int:
        n = 0
        for item in self._queue:
            if not isinstance(item, IngestBatch):
                break
            n += item.size
        return n

    def _take(self) -> list[IngestBatch] | _Task | None:
        with self._cond:
            while not self._queue:
                if self._stop:
                    return None
                self._cond.wait(0.5)
            if isinstance(self._queue[0], _Task):
                return self._queue.popleft()  # type: ignore[return-value]
            # Group commit: a short linger lets concurrent requests share one transaction, which
            # pays the insert's fixed cost and the WAL flush once instead of once per request.
            if self._linger and not self._stop:
                # Every offer() and the end of every arriving() notifies: keep waiting until the
                # deadline, a full batch, or nothing more on its way.
                deadline = time.monotonic() + self._linger
                while not self._stop and self._arriving and self._queued_spans() < self._batch_spans:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            group: list[IngestBatch] = []
            n = 0
            while self._queue and n < self._batch_spans and isinstance(self._queue[0], IngestBatch):
                nxt = self._queue.popleft()
                assert isinstance(nxt, IngestBatch)
                group.append(nxt)
                n += nxt.size
            return group

    def _run(self) -> None:
        while True:
            item = self._take()
            if item is None:
                return
            if isinstance(item, _Task):
                self._run_task(item)
            elif item:
                self._commit_group(item)

    def _run_task(self, task: _Task) -> None:
        if not task.future.set_running_or_notify_cancel():
            return
        try:
            task.future.set_result(task.fn(self._store.connection))
        except BaseException as exc:  # delivered to the submitter
            task.future.set_exception(exc)

    def _commit(self, group: list[IngestBatch]) -> None:
        tables = [b.table for b in group if b.table is not None]
        rejected = [r for b in group for r in b.rejected]
        days: set[int] = set()
        lo, hi = 1 << 63, 0
        for b in group:
            if b.table is not None:
                days |= b.days
                lo, hi = min(lo, b.lo), max(hi, b.hi)
        table = pa.concat_tables(tables) if tables else None
        if len(tables) > 1 and _has_repeats(table):
            table = _first_copies(table)  # a retry raced its original into the same group
        late = self.late_pricer
        if late is not None and table is not None:
            table = price_unpriced(table, late)
        new_days = days - self.marked_days
        con = self._store.connection
        con.execute("BEGIN TRANSACTION")
        try:
            insert_batch(con, table, lo, hi, rejected)
            mark_days_dirty(con, new_days)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.marked_days |= new_days
        self.rows_committed += 0 if table is None else table.num_rows
        self.rejected_committed += len(rejected)

    def _commit_group(self, group: list[IngestBatch]) -> None:
        size = sum(b.size for b in group)
        t0 = time.perf_counter()
        try:
            self._commit(group)
        except Exception as exc:
            if len(group) > 1:
                # One bad request must not fail its neighbours: retry them one by one.
                log.warning("group commit of %d requests failed (%s); retrying one by one", len(group), exc)
                for b in group:
                    self._commit_group([b])
                return
            log.exception("commit failed")
            with self._cond:
                self._pending -= size
            group[0].future.set_exception(exc)
            return
        with self._cond:
            self._pending -= size
        self.commits += 1
        self.last_commit = datetime.now(UTC)
        log.debug(
            "committed %d spans from %d requests in %.1f ms",
            size,
            len(group),
            (time.perf_counter() - t0) * 1e3,
        )
        if self._on_commit is not None:
            self._on_commit(size)
        for b in group:
            b.future.set_result(b.result())
