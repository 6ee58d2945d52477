"""Spans older than the calls retention are refused visibly and never disturb the kept rollups."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("duckdb")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spendscope.collector.ingest import build_batch, reject_before
from spendscope.collector.normalize import rows_from_protobuf
from spendscope.collector.pricer import Pricer
from spendscope.pricing import PriceTable
from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict

DAY_NS = 86_400 * 10**9


def _span(start_ns: int, feature: str) -> dict[str, object]:
    attrs = genai_attrs(**{"gen_ai.usage.input_tokens": 100, "spendscope.feature": feature})
    return span_dict(attrs, start_ns=start_ns)


def test_reject_before_splits_a_batch() -> None:
    now = time.time_ns()
    spans = [_span(now - 40 * DAY_NS, "old"), _span(now, "new"), _span(now - 39 * DAY_NS, "old")]
    batch = build_batch(
        rows_from_protobuf(make_request(spans).SerializeToString()), Pricer(PriceTable.default())
    )
    first_day = datetime.fromtimestamp(now / 1e9, UTC).date() - timedelta(days=30)
    out = reject_before(batch, first_day, "too old")
    assert out.n_rows == 1 and out.lo == out.hi == now and out.days == frozenset({now // DAY_NS})
    old = [spans[0], spans[2]]
    assert out.rejected == [
        (s["trace_id"].hex(), s["span_id"].hex(), "test-service", "chat", "too old", "{}") for s in old
    ]
    assert out.future is batch.future
    assert reject_before(out, first_day, "too old") is out  # nothing left to move


def test_collector_refuses_spans_older_than_calls_retention(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[retention]\ncalls_days = 30\nrollup_days = 0\n")
    proc = CollectorProcess(tmp_path / "r.duckdb", config=config).start()
    try:
        now = time.time_ns()
        body = make_request([_span(now - 45 * DAY_NS, "late"), _span(now, "fresh")]).SerializeToString()
        r = proc.post_otlp(body)
        assert r.status_code == 200
        partial = ExportTraceServiceResponse.FromString(r.content).partial_success
        assert partial.rejected_spans == 1
        assert "calls retention" in partial.error_message
        spend = proc.get(
            "/api/v1/spend", start="2000-01-01T00:00:00Z", end="2100-01-01T00:00:00Z", group_by="feature"
        ).json()
        assert [(x["feature"], x["calls"]) for x in spend["rows"]] == [("fresh", 1)]
        rejected = proc.get("/api/v1/rejected").json()["rows"]
        assert [x["reason"] for x in rejected] == [
            "span starts before the calls retention window (retention.calls_days = 30)"
        ]
    finally:
        proc.terminate()
