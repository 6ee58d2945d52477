"""The single writer against a real DuckDB file: group commits, repeats inside one group, shutdown."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("duckdb")

from spendscope.collector.ingest import IngestBatch, Writer, build_batch
from spendscope.collector.normalize import rows_from_protobuf
from spendscope.collector.pricer import Pricer
from spendscope.collector.store import Store
from spendscope.pricing import PriceTable
from tests.collector.helpers import genai_attrs, make_request, span_dict


def _batch(spans: list[dict[str, object]], pricer: Pricer) -> IngestBatch:
    return build_batch(rows_from_protobuf(make_request(spans).SerializeToString()), pricer)


def test_a_group_with_a_retry_of_its_neighbour_stores_each_span_once(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "w.duckdb"))
    store.migrate()
    pricer = Pricer(PriceTable.default())
    now = time.time_ns()
    spans = [
        span_dict(
            genai_attrs(**{"gen_ai.usage.input_tokens": 10 + i}), start_ns=now + i, span_id=os.urandom(8)
        )
        for i in range(6)
    ]
    first = _batch(spans[:4], pricer)
    retry = _batch(spans[2:4], pricer)  # the exporter retried while the original was still queued
    other = _batch(spans[4:], pricer)
    writer = Writer(store, max_queue_spans=1000, batch_spans=1000, linger_s=0.5)
    for b in (first, retry, other):  # queued before the thread starts: one group
        assert writer.offer(b)
    writer.start()
    try:
        results = [b.future.result(timeout=30) for b in (first, retry, other)]
    finally:
        assert writer.stop(timeout=30)
    assert [r.stored for r in results] == [4, 2, 2]  # every request is acknowledged in full
    assert writer.commits == 1 and writer.rows_committed == 6
    rows = store.connection.execute(
        "SELECT span_id, input_tokens FROM calls ORDER BY input_tokens"
    ).fetchall()
    store.close()
    assert [r[1] for r in rows] == [10, 11, 12, 13, 14, 15]
    assert len({r[0] for r in rows}) == 6


def test_stop_commits_what_was_queued(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.duckdb"))
    store.migrate()
    pricer = Pricer(PriceTable.default())
    batches = [_batch([span_dict(genai_attrs())], pricer) for _ in range(3)]
    writer = Writer(store, max_queue_spans=2, batch_spans=1000, linger_s=5.0)
    assert writer.offer(batches[0]) and writer.offer(batches[1])
    assert not writer.offer(batches[2])  # the queue bound holds: the receiver answers 503
    writer.start()
    assert writer.stop(timeout=30)  # no 5 s linger at shutdown: drain and commit now
    assert all(b.future.result(timeout=1).stored == 1 for b in batches[:2])
    count = store.connection.execute("SELECT count(*) FROM calls").fetchone()
    store.close()
    assert count == (2,)


def test_the_writer_lingers_only_while_a_request_is_on_its_way(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "l.duckdb"))
    store.migrate()
    pricer = Pricer(PriceTable.default())
    now = time.time_ns()
    a, b, c = (
        _batch([span_dict(genai_attrs(), start_ns=now + i, span_id=os.urandom(8))], pricer) for i in range(3)
    )
    writer = Writer(store, max_queue_spans=1000, batch_spans=1000, linger_s=30.0)
    writer.start()
    try:
        # Nothing else is being decoded: committed at once, not after the 30 s linger.
        t0 = time.monotonic()
        assert writer.offer(a)
        a.future.result(timeout=10)
        assert time.monotonic() - t0 < 10 and writer.commits == 1
        # A request still decoding keeps the group open; the commit follows its arrival.
        with writer.arriving():
            assert writer.offer(b)
            time.sleep(0.3)
            assert not b.future.done()
            assert writer.offer(c)
        b.future.result(timeout=10)
        c.future.result(timeout=10)
        assert writer.commits == 2 and writer.rows_committed == 3
    finally:
        assert writer.stop(timeout=30)
        store.close()


def test_the_rollup_job_waits_for_a_day_to_settle(tmp_path: Path) -> None:
    from spendscope.collector.config import load_config
    from spendscope.collector.server import build_context, rollup_now, shutdown

    ctx = build_context(load_config(None, env={}, db=str(tmp_path / "r.duckdb")))
    assert ctx.writer is not None and ctx.pricer is not None
    ctx.writer.start()
    try:
        batch = _batch([span_dict(genai_attrs(), span_id=os.urandom(8))], ctx.pricer)
        assert ctx.writer.offer(batch)
        batch.future.result(timeout=30)

        def dirty() -> int:
            cur = ctx.store.cursor()
            try:
                row = cur.execute("SELECT count(*) FROM rollup_state WHERE dirty").fetchone()
            finally:
                cur.close()
            return int(row[0]) if row else -1

        assert rollup_now(ctx) == 0 and dirty() == 1  # committed to since the last pass: still busy
        assert rollup_now(ctx) == 1 and dirty() == 0  # no commit since: rolled
    finally:
        shutdown(ctx)
