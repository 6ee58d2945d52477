"""Garbage in: the right status codes, rejected spans recorded, valid spans in the same request kept."""

from __future__ import annotations

import gzip
import json
import os
import time

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict

pytestmark = [pytest.mark.server, pytest.mark.slow]

MiB = 1024 * 1024


def _status(r: httpx.Response) -> str:
    return str(Status.FromString(r.content).message)


def _feature_calls(collector: CollectorProcess, feature: str) -> int:
    rows = collector.get("/api/v1/spend", start="2000-01-01", group_by="feature").json()["rows"]
    return sum(r["calls"] for r in rows if r["feature"] == feature)


def _rejections(collector: CollectorProcess) -> list[dict[str, str]]:
    return list(collector.get("/api/v1/rejected", limit="1000").json()["rows"])


def test_garbage_and_truncated_protobuf_get_400(collector: CollectorProcess) -> None:
    r = collector.post_otlp(b"\xff\xfe this is not protobuf \x00\x01")
    assert r.status_code == 400
    assert "invalid protobuf" in _status(r)
    body = make_request([span_dict(genai_attrs(feature="t"))]).SerializeToString()
    r = collector.post_otlp(body[: len(body) // 2])
    assert r.status_code == 400
    assert "ExportTraceServiceRequest" in _status(r)


def test_wrong_content_type_and_encoding(collector: CollectorProcess) -> None:
    body = make_request([span_dict(genai_attrs())]).SerializeToString()
    r = collector.post_otlp(body, content_type="text/plain")
    assert r.status_code == 415 and "Content-Type" in r.json()["message"]
    r = collector.post_otlp(body, headers={"Content-Encoding": "br"})
    assert r.status_code == 400 and "Content-Encoding" in _status(r)
    r = collector.post_otlp(b"\x1f\x8b\x08 broken gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in _status(r)
    r = collector.post_otlp(b"{not json", content_type="application/json")
    assert r.status_code == 400 and "invalid JSON" in r.json()["message"]
    r = collector.post_otlp(b"[]", content_type="application/json")
    assert r.status_code == 400


def test_oversized_bodies_get_413(collector: CollectorProcess) -> None:
    r = collector.post_otlp(b"\x00" * (16 * MiB + 1))
    assert r.status_code == 413
    bomb = gzip.compress(b"\x00" * (20 * MiB))
    assert len(bomb) < MiB
    r = collector.post_otlp(bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in _status(r)


def test_deeply_nested_bodies(collector: CollectorProcess) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    r = collector.post_otlp(
        json.dumps({"resourceSpans": "x"})[:-1].encode() + deep.encode() + b"}",
        content_type="application/json",
    )
    assert r.status_code == 400
    r = collector.post_otlp(deep.encode(), content_type="application/json")
    assert r.status_code == 400

    # A protobuf attribute nested past the parser's depth limit rejects its span only. upb will not
    # build such a message, so the bytes are written by hand (concatenated fields merge).
    value = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(300):
        kv = _field(1, b"k") + _field(2, value)  # KeyValue{key, value}
        value = _field(6, _field(1, kv))  # AnyValue{kvlist_value: KeyValueList{values: [kv]}}
    deep_attr = _field(1, b"deep") + _field(2, value)
    good = span_dict(genai_attrs(**{"spendscope.feature": "nest-ok"}))
    bad = span_dict(genai_attrs(**{"spendscope.feature": "nest-bad"}))
    spans = make_request([good, bad]).resource_spans[0].scope_spans[0].spans
    span_bytes = [spans[0].SerializeToString(), spans[1].SerializeToString() + _field(9, deep_attr)]
    body = _field(1, _field(2, b"".join(_field(2, sb) for sb in span_bytes)))
    r = collector.post_otlp(body)
    if r.status_code == 200:
        resp = ExportTraceServiceResponse.FromString(r.content)
        assert resp.partial_success.rejected_spans == 1
        assert "invalid attribute" in resp.partial_success.error_message
        assert _feature_calls(collector, "nest-ok") == 1
        assert _feature_calls(collector, "nest-bad") == 0
    else:  # a parser may refuse the whole request instead; it must say why
        assert r.status_code == 400 and _status(r)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_bad_spans_are_rejected_and_recorded_valid_ones_kept(collector: CollectorProcess) -> None:
    now = time.time_ns()
    feat = {"spendscope.feature": "mixed"}
    spans = [
        span_dict(
            genai_attrs(**feat, **{"gen_ai.usage.input_tokens": 10, "x.unknown.attr": [1, 2]}), start_ns=now
        ),
        span_dict(genai_attrs(**feat, **{"some.other": {"nested": True}}), start_ns=now + 1),
        span_dict({"gen_ai.operation.name": "chat", **feat}, start_ns=now + 2),  # no model
        span_dict(genai_attrs(**feat), trace_id=b"", start_ns=now + 3),  # no trace id
        span_dict(genai_attrs(**feat), start_ns=0, duration_ns=0),  # no start time
        span_dict(genai_attrs(**feat), start_ns=now + 5, duration_ns=-10),  # ends before it starts
        span_dict(genai_attrs(**feat, **{"gen_ai.usage.input_tokens": "many"}), start_ns=now + 6),
        span_dict(genai_attrs(**feat, **{"gen_ai.usage.output_tokens": -5}), start_ns=now + 7),
        span_dict({"http.request.method": "GET"}, start_ns=now + 8),  # not GenAI: acknowledged, ignored
        # Values beyond their columns (32-bit status, 64-bit end time) refuse their span, not the request.
        span_dict(genai_attrs(**feat, **{"http.response.status_code": 2**40}), start_ns=now + 9),
        span_dict(genai_attrs(**feat), start_ns=now + 10, duration_ns=2**64 - 1 - now - 10),
    ]
    r = collector.post_otlp(make_request(spans).SerializeToString())
    assert r.status_code == 200
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 8
    msg = resp.partial_success.error_message
    for needle in (
        "without a model",
        "trace_id",
        "no start time",
        "ends before",
        "input_tokens",
        "output_tokens",
        "http.response.status_code out of range",
        "end time out of range",
    ):
        assert needle in msg
    assert _feature_calls(collector, "mixed") == 2
    reasons = [x["reason"] for x in _rejections(collector)]
    assert any("gen_ai.usage.input_tokens must be an integer" in x for x in reasons)
    assert any("gen_ai.usage.output_tokens out of range" in x for x in reasons)


def test_json_span_with_bad_ids_rejected_alone(collector: CollectorProcess) -> None:
    now = time.time_ns()

    def span(tid: str, name: str) -> dict[str, object]:
        return {
            "traceId": tid,
            "spanId": os.urandom(8).hex(),
            "name": name,
            "startTimeUnixNano": str(now),
            "endTimeUnixNano": str(now + 5),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "embeddings"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "text-embedding-3-small"}},
                {"key": "spendscope.feature", "value": {"stringValue": "json-ids"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
            ],
        }

    body = {
        "resourceSpans": [{"scopeSpans": [{"spans": [span(os.urandom(16).hex(), "ok"), span("xyz", "bad")]}]}]
    }
    r = collector.post_otlp(json.dumps(body).encode(), content_type="application/json")
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] in ("1", 1)
    assert _feature_calls(collector, "json-ids") == 1


def test_empty_and_non_genai_requests_are_acknowledged(collector: CollectorProcess) -> None:
    assert collector.post_otlp(b"").status_code == 200
    assert collector.post_otlp(b"{}", content_type="application/json").status_code == 200
    r = collector.post_otlp(make_request([span_dict({"db.system": "postgresql"})]).SerializeToString())
    assert r.status_code == 200
    assert ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == 0
    assert collector.get("/healthz").json()["ok"] is True
