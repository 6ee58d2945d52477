"""Ingest over real OTLP/HTTP into a real collector process, read back through /api/v1/*."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from spendscope.pricing import PriceTable, Usage, price_usage
from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict

pytestmark = [pytest.mark.server, pytest.mark.slow]

DAY = datetime(2026, 3, 10, tzinfo=UTC)


def _window(**params: str) -> dict[str, str]:
    return {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z", **params}


# The first test's spans are all before this; the module's later tests store theirs after it.
_OWN_HOURS_END = "2026-03-10T04:00:00Z"


def _ns(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def test_real_exporter_spans_become_priced_rows(collector: CollectorProcess) -> None:
    tp = TracerProvider(resource=Resource.create({"service.name": "billing-api"}))
    exporter = OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces", compression=Compression.Gzip)
    tp.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))
    tracer = tp.get_tracer("test")
    start = _ns(DAY + timedelta(hours=1))
    for i in range(20):
        span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=start + i * 1000)
        span.set_attributes(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.cache_read.input_tokens": 400,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.reasoning.output_tokens": 0,
                "http.response.status_code": 200,
                "spendscope.user": f"user-{i % 2}",
                "spendscope.feature": "search",
                "spendscope.openai.project": "proj_a",
                "spendscope.tag.team": "growth",
            }
        )
        span.end(end_time=start + i * 1000 + 500_000_000)
    for i in range(5):
        span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=start + 10**6 + i)
        span.set_attributes(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "http.response.status_code": 429,
                "error.type": "rate_limit_exceeded",
                "spendscope.openai.project": "proj_a",
            }
        )
        span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + 10**6 + i + 1000)
    assert tp.force_flush(30_000)
    tp.shutdown()

    r = collector.get("/api/v1/spend", **_window(end=_OWN_HOURS_END, group_by="model,project"))
    assert r.status_code == 200, r.text
    doc = r.json()
    rows = {(x["model"], x["project"]): x for x in doc["rows"]}
    ok = rows[("gpt-4o-2024-08-06", "proj_a")]
    assert ok["calls"] == 20 and ok["errors"] == 0
    assert (
        ok["input_tokens"] == 20_000 and ok["cached_input_tokens"] == 8_000 and ok["output_tokens"] == 6_000
    )
    one = price_usage(
        PriceTable.default(),
        "gpt-4o-2024-08-06",
        DAY,
        Usage(input_tokens=1000, cached_input_tokens=400, output_tokens=300),
    )
    assert one.cost is not None
    assert Decimal(ok["cost_usd"]) == one.cost * 20
    err = rows[("gpt-4o", "proj_a")]
    assert err["calls"] == 5 and err["errors"] == 5 and err["cost_usd"] == "0" and err["unpriced_calls"] == 0
    assert doc["totals"]["calls"] == 25 and doc["totals"]["errors"] == 5
    assert Decimal(doc["totals"]["cost_usd"]) == one.cost * 20

    own = _window(end=_OWN_HOURS_END, group_by="user,feature,service")
    by_user = collector.get("/api/v1/spend", **own).json()["rows"]
    assert {(x["user"], x["feature"], x["service"], x["calls"]) for x in by_user} == {
        ("user-0", "search", "billing-api", 10),
        ("user-1", "search", "billing-api", 10),
        (None, None, "billing-api", 5),
    }
    calls = collector.get("/api/v1/calls", **_window(end=_OWN_HOURS_END, limit="100")).json()["rows"]
    assert len(calls) == 25
    assert {c["tags"].get("team") for c in calls if c["status_code"] == 200} == {"growth"}
    assert all(c["error_type"] == "rate_limit_exceeded" for c in calls if c["is_error"])


def test_json_encoding_deprecated_names_and_partial_success(collector: CollectorProcess) -> None:
    t0 = _ns(DAY + timedelta(hours=5))
    tid = os.urandom(16).hex()
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "legacy"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": tid,
                                "spanId": os.urandom(8).hex(),
                                "name": "openai.chat",
                                "startTimeUnixNano": str(t0),
                                "endTimeUnixNano": str(t0 + 10**9),
                                "attributes": [
                                    {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                                    {"key": "llm.request.type", "value": {"stringValue": "chat"}},
                                    {
                                        "key": "gen_ai.request.model",
                                        "value": {"stringValue": "legacy-model-x"},
                                    },
                                    {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "70"}},
                                    {"key": "gen_ai.usage.completion_tokens", "value": {"intValue": 30}},
                                ],
                            },
                            {
                                "traceId": tid,
                                "spanId": os.urandom(8).hex(),
                                "name": "no model",
                                "startTimeUnixNano": str(t0),
                                "endTimeUnixNano": str(t0 + 1),
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}
                                ],
                            },
                            {
                                "traceId": tid,
                                "spanId": os.urandom(8).hex(),
                                "name": "GET /",
                                "startTimeUnixNano": str(t0),
                                "endTimeUnixNano": str(t0 + 1),
                                "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}],
                            },
                        ]
                    }
                ],
            }
        ]
    }
    r = collector.post_otlp(json.dumps(body).encode(), content_type="application/json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    ps = r.json()["partialSuccess"]
    assert ps["rejectedSpans"] in ("1", 1) and "without a model" in ps["errorMessage"]
    rows = collector.get("/api/v1/spend", **_window(group_by="service,model,api")).json()["rows"]
    legacy = [x for x in rows if x["service"] == "legacy"]
    assert legacy == [
        {
            "service": "legacy",
            "model": "legacy-model-x",
            "api": "chat_completions",
            "calls": 1,
            "errors": 0,
            "input_tokens": 70,
            "cached_input_tokens": 0,
            "cache_write_input_tokens": 0,
            "output_tokens": 30,
            "reasoning_tokens": 0,
            "input_audio_tokens": 0,
            "output_audio_tokens": 0,
            "cost_usd": None,
            "unpriced_calls": 1,
        }
    ]
    rejected = collector.get("/api/v1/rejected").json()["rows"]
    assert any(x["trace_id"] == tid and "without a model" in x["reason"] for x in rejected)


def test_same_span_twice_is_stored_once(collector: CollectorProcess) -> None:
    t0 = _ns(DAY + timedelta(hours=7))
    spans = [
        span_dict(
            genai_attrs("gpt-4o-mini", **{"gen_ai.usage.input_tokens": 5, "spendscope.feature": "dup"}),
            start_ns=t0 + i,
        )
        for i in range(10)
    ]
    body = make_request(spans + spans[:3]).SerializeToString()
    for _ in range(3):
        r = collector.post_otlp(body)
        assert r.status_code == 200
        assert ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == 0
    rows = collector.get("/api/v1/spend", **_window(group_by="feature")).json()["rows"]
    assert [x["calls"] for x in rows if x["feature"] == "dup"] == [10]


def test_ratelimits_latency_and_errors(collector: CollectorProcess) -> None:
    now = time.time_ns()
    spans = [
        span_dict(
            genai_attrs(
                "gpt-4.1",
                **{
                    "gen_ai.response.model": "gpt-4.1-2025-04-14",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 1,
                    "spendscope.openai.project": "proj_rl",
                    "spendscope.ratelimit.limit_requests": 500,
                    "spendscope.ratelimit.remaining_requests": 500 - i,
                    "spendscope.ratelimit.limit_tokens": 30000,
                    "spendscope.ratelimit.remaining_tokens": 29000 - i,
                    "spendscope.ratelimit.reset_requests_s": 0.12,
                },
            ),
            start_ns=now - 10**9 + i * 1000,
            duration_ns=(i + 1) * 10**7,
        )
        for i in range(10)
    ]
    assert collector.post_otlp(make_request(spans).SerializeToString()).status_code == 200
    rl = collector.get("/api/v1/ratelimits").json()["rows"]
    mine = [x for x in rl if x["project"] == "proj_rl"]
    assert len(mine) == 1
    assert mine[0]["model"] == "gpt-4.1-2025-04-14"
    assert mine[0]["remaining_requests"] == 491 and mine[0]["limit_tokens"] == 30000
    assert mine[0]["observed_at"].endswith("Z")
    lat = collector.get("/api/v1/latency", group_by="model,project").json()["rows"]
    row = next(x for x in lat if x["project"] == "proj_rl")
    assert row["calls"] == 10 and 0.05 < row["p50_s"] < 0.06 and row["p99_s"] <= 0.1


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"group_by": "model,colour"}, "colour"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-03-10T00:00:00"}, "time zone"),
        ({"start": "2026-03-11", "end": "2026-03-10"}, "before"),
    ],
)
def test_spend_validation(collector: CollectorProcess, params: dict[str, str], needle: str) -> None:
    r = collector.get("/api/v1/spend", **params)
    assert r.status_code == 400
    assert needle in r.json()["error"]


def test_prices_healthz_alerts(collector: CollectorProcess) -> None:
    prices = collector.get("/api/v1/prices", at="2026-03-10T00:00:00Z").json()
    models = {r["model"] for r in prices["rows"]}
    assert "gpt-4o" in models
    row = next(r for r in prices["rows"] if r["model"] == "gpt-4o" and r["tier"] == "default")
    assert "E" not in row["input_per_mtok"] and Decimal(row["input_per_mtok"]) > 0
    health = collector.get("/healthz").json()
    assert health["ok"] is True and health["db"].endswith("spendscope.duckdb") and "queue_spans" in health
    alerts = collector.get("/api/v1/alerts")
    assert alerts.status_code == 200 and isinstance(alerts.json()["rows"], list)
    assert httpx.post(f"{collector.url}/api/v1/prices/reprice", json={"since": "nope"}).status_code == 400
