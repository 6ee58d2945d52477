"""The decoder's fast path gives exactly what decode + normalize give, span for span.

``rows_from_protobuf`` assembles rows straight from cached attributes and hands anything
unusual to ``normalize``; a batch built either way must be the same table, rejections and count
of ignored spans, for our SDK's spans and for every odd mix of names, types and ids.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from spendscope.collector.ingest import IngestBatch, build_batch
from spendscope.collector.normalize import Normalized, rows_from_protobuf
from spendscope.collector.otlp import decode_protobuf
from spendscope.collector.pricer import Pricer
from spendscope.collector.schema import COLUMNS, ROW_FIELDS
from spendscope.pricing import PriceTable
from tests.collector.helpers import _any

pytestmark = pytest.mark.server

EMPTY = object()  # an attribute whose AnyValue is unset
_PRICER = Pricer(PriceTable.default())
# Every attribute a column reads, with the coercion its values get.
_COERCE = {attr: c.coerce for c in COLUMNS for attr in c.attributes}
_KEYS = [
    *sorted(_COERCE),
    "spendscope.tag.team",
    "spendscope.tag.n",
    "gen_ai.request.temperature",
    "some.unknown.key",
]
_VALUES = st.one_of(
    st.sampled_from(["openai", "chat", "gpt-4o-mini", "gpt-4o", "embeddings", "", "default", "true"]),
    st.sampled_from([0, 1, 200, 429, 500, 1024, 2**32, 2**62, -5, True, False, 1.5, 3.0, EMPTY]),
    st.sampled_from([math.nan, math.inf, -math.inf, "y" * 5000, "é" * 1500]),
    st.sampled_from(["12", " 7 ", "x", b"\x01", ["stop"], {"k": 1}]),
)
_SPAN = st.fixed_dictionaries(
    {
        "attrs": st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=14),
        "ids": st.sampled_from(["ok", "ok", "ok", "zero", "short"]),
        "times": st.sampled_from(["ok", "ok", "ok", "no_start", "backwards", "no_end", "huge_end"]),
        "error": st.booleans(),
        "name": st.sampled_from(["chat gpt-4o", ""]),
    }
)


def _typed(key: str) -> st.SearchStrategy[Any]:
    # A value of the type the key expects, so that most spans take the fast path.
    coerce = _COERCE[key]
    if coerce == "str":
        return st.sampled_from(["openai", "chat", "responses", "gpt-4o-mini", "gpt-4o", "", "flex", "u-1"])
    if coerce in ("tokens", "count", "int32"):
        return st.sampled_from([0, 3, 200, 404, 429, 1024])
    if coerce == "float":
        return st.sampled_from([0.0, 0.25, 12.5])
    return st.booleans()


_GENAI = {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
_TYPED_SPAN = st.fixed_dictionaries(
    {
        "attrs": st.lists(st.sampled_from(sorted(_COERCE)), max_size=16, unique=True).flatmap(
            lambda keys: st.fixed_dictionaries({k: _typed(k) for k in keys}).map(
                lambda extra: {**_GENAI, **extra} if len(keys) % 4 else extra
            )
        ),
        "ids": st.just("ok"),
        "times": st.just("ok"),
        "error": st.booleans(),
        "name": st.sampled_from(["chat gpt-4o", ""]),
    }
)


def _request(spans: list[dict[str, Any]], service: Any = "svc") -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=_any(service)))
    ss = rs.scope_spans.add()
    for i, s in enumerate(spans):
        p = ss.spans.add()
        p.trace_id = {"ok": os.urandom(16), "zero": b"\0" * 16, "short": b"\1" * 4}[s["ids"]]
        p.span_id = {"ok": os.urandom(8), "zero": b"\0" * 8, "short": b"\1" * 2}[s["ids"]]
        p.name = s["name"]
        start = 1_700_000_000_000_000_000 + i
        p.start_time_unix_nano = 0 if s["times"] == "no_start" else start
        ends = {"backwards": start - 10, "no_end": 0, "huge_end": 2**64 - 1}
        p.end_time_unix_nano = ends.get(s["times"], start + 10**8)
        if s["error"]:
            p.status.code = 2
        for k, v in s["attrs"].items():
            p.attributes.append(KeyValue(key=k) if v is EMPTY else KeyValue(key=k, value=_any(v)))
    return bytes(req.SerializeToString())


def _slow(body: bytes) -> IngestBatch:
    """The reference: decode every span, then normalize each."""
    return build_batch(Normalized(spans=decode_protobuf(body)), _PRICER)


def _same(a: IngestBatch, b: IngestBatch) -> None:
    assert (a.table is None) == (b.table is None)
    if a.table is not None and b.table is not None:
        # The fast path's rows come before the spans it left to normalize(): compare as sets.
        def key(r: dict[str, Any]) -> tuple[str, str]:
            return (r["trace_id"], r["span_id"])

        assert sorted(a.table.to_pylist(), key=key) == sorted(b.table.to_pylist(), key=key)
    assert a.rejected == b.rejected
    assert a.ignored == b.ignored


@settings(max_examples=150, deadline=None)
@given(st.lists(_SPAN, min_size=1, max_size=6), st.sampled_from(["svc", 7, ""]))
def test_fast_rows_equal_decode_and_normalize(spans: list[dict[str, Any]], service: Any) -> None:
    body = _request(spans, service)
    for _ in range(2):  # the second pass is served from the attribute cache
        _same(build_batch(rows_from_protobuf(body), _PRICER), _slow(body))


@settings(max_examples=150, deadline=None)
@given(st.lists(_TYPED_SPAN, min_size=1, max_size=6))
def test_fast_rows_equal_normalize_for_well_typed_spans(spans: list[dict[str, Any]]) -> None:
    body = _request(spans)
    _same(build_batch(rows_from_protobuf(body), _PRICER), _slow(body))


def test_our_sdk_spans_take_the_fast_path() -> None:
    attrs = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "server.address": "api.openai.com",
        "server.port": 443,
        "http.response.status_code": 200,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.output_tokens": 80,
        "gen_ai.response.finish_reasons": ["stop"],
        "spendscope.user": "u-17",
        "spendscope.ratelimit.remaining_tokens": 1_999_000,
    }
    spans = [{"attrs": attrs, "ids": "ok", "times": "ok", "error": False, "name": "chat"}] * 3
    body = _request(spans)
    decoded = rows_from_protobuf(body)
    assert len(decoded.rows) == 3 and not decoded.spans
    with_tag = [{**spans[0], "attrs": {**attrs, "spendscope.tag.team": "search"}}]
    tagged = rows_from_protobuf(_request(with_tag))
    assert not tagged.rows and len(tagged.spans) == 1  # tags: normalize()
    _same(build_batch(decoded, _PRICER), _slow(body))


def test_a_value_that_does_not_fit_its_column_refuses_only_its_span() -> None:
    spans = [{"attrs": _GENAI, "ids": "ok", "times": "ok", "error": False, "name": "chat"}] * 3
    good = rows_from_protobuf(_request(spans)).rows
    assert len(good) == 3
    bad = list(good[1])
    bad[ROW_FIELDS.index("status_code")] = 2**40  # a 32-bit column; normalize() refuses this, a row could not
    batch = build_batch(Normalized(rows=[good[0], tuple(bad), good[2]]), _PRICER)
    assert batch.table is not None and batch.table.num_rows == 2
    assert [r[0] for r in batch.rejected] == [bad[0]]
    assert "does not fit its column" in str(batch.rejected[0][4])
    assert batch.result().rejected == 1
