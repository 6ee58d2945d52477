"""The SDK's fast OTLP encoder writes exactly what the official encoder writes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from spendscope.instrument.otlp import encode_spans_fast

VALUES = st.one_of(
    st.text(max_size=40),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=10), max_size=4).map(tuple),
)
ATTRS = st.dictionaries(st.text(min_size=1, max_size=30), VALUES, max_size=40)
RESOURCES = [Resource.create({"service.name": "a"}), Resource.create({"service.name": "b", "x": 1})]
SCOPES = [
    InstrumentationScope("spendscope.instrument", "0.1.0"),
    InstrumentationScope("other", None, "https://s"),
]


def _span(
    attrs: dict[str, Any], i: int, status: Status, parent: SpanContext | None, kind: SpanKind
) -> ReadableSpan:
    return ReadableSpan(
        f"chat model-{i}",
        SpanContext(
            2**100 + i, 2**60 + i, False, TraceFlags(1), TraceState([("k", "v")]) if i % 3 == 0 else None
        ),
        parent,
        RESOURCES[i % 2],
        attrs,
        kind=kind,
        status=status,
        start_time=1_700_000_000_000_000_000 + i,
        end_time=1_700_000_000_500_000_000 + i,
        instrumentation_scope=SCOPES[i % 2],
    )


@settings(max_examples=80, deadline=None)
@given(
    batch=st.lists(
        st.tuples(
            ATTRS,
            st.sampled_from(
                [Status(StatusCode.UNSET), Status(StatusCode.ERROR, "boom"), Status(StatusCode.OK)]
            ),
            st.booleans(),
            st.sampled_from(list(SpanKind)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fast_encoding_equals_official(batch: list[Any]) -> None:
    spans = [
        _span(attrs, i, status, SpanContext(7, 8 + i, remote, TraceFlags(1)) if i % 2 else None, kind)
        for i, (attrs, status, remote, kind) in enumerate(batch)
    ]
    fast = encode_spans_fast(spans)
    assert fast is not None
    assert ExportTraceServiceRequest.FromString(fast) == encode_spans(spans)


def test_spans_with_events_fall_back() -> None:
    span = ReadableSpan("x", SpanContext(1, 2, False, TraceFlags(1)), events=(Event("e"),))
    assert encode_spans_fast([span]) is None
