"""The SDK's fast OTLP encoder writes exactly what the official encoder makes of the same spans."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceState

from spendscope.instrument.otlp import encode_records, envelope
from spendscope.instrument.record import SpanRecord, to_readable_spans

VALUES = st.one_of(
    st.text(max_size=40),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=10), max_size=4),
    st.lists(st.integers(min_value=0, max_value=2**40), max_size=3).map(tuple),
)
# Keys repeat across spans so that cached encodings are hit, including one key whose value changes type.
KEYS = st.one_of(
    st.sampled_from(["gen_ai.request.model", "n", "spendscope.attempt"]), st.text(min_size=1, max_size=30)
)
ATTRS = st.dictionaries(KEYS, VALUES, max_size=40)
RESOURCES = [
    Resource.create({"service.name": "a"}),
    Resource({"service.name": "b", "x": 1}, "https://schema/r"),
    Resource({}),
]
SCOPES = [
    InstrumentationScope("spendscope.instrument", "0.1.0"),
    InstrumentationScope("other", None, "https://s"),
]
RECORDS = st.builds(
    SpanRecord,
    name=st.text(max_size=200),
    trace_id=st.integers(min_value=1, max_value=2**128 - 1),
    span_id=st.integers(min_value=1, max_value=2**64 - 1),
    parent_span_id=st.one_of(st.just(0), st.integers(min_value=1, max_value=2**64 - 1)),
    parent_is_remote=st.booleans(),
    trace_state=st.sampled_from([None, TraceState(), TraceState([("k", "v"), ("vendor", "x=y")])]),
    start_ns=st.integers(min_value=0, max_value=2**64 - 1),
    end_ns=st.integers(min_value=0, max_value=2**64 - 1),
    error=st.one_of(st.none(), st.just(""), st.text(max_size=300)),
    attributes=ATTRS,
)


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(RECORDS, min_size=1, max_size=5),
    resource=st.sampled_from(RESOURCES),
    scope=st.sampled_from(SCOPES),
)
def test_fast_encoding_equals_official(records: list[SpanRecord], resource: Resource, scope: Any) -> None:
    fast = encode_records(records, envelope(resource, scope))
    official = encode_spans(to_readable_spans(records, resource, scope))
    assert ExportTraceServiceRequest.FromString(fast) == official


def test_same_bytes_as_official_for_a_call_span() -> None:
    resource, scope = RESOURCES[0], SCOPES[0]
    record = SpanRecord(
        "chat gpt-4o",
        2**100 + 7,
        2**60 + 3,
        0,
        False,
        None,
        1_700_000_000_000_000_000,
        1_700_000_000_500_000_000,
        None,
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.stream": False,
            "spendscope.attempt": 0,
            "gen_ai.usage.input_tokens": 12,
            "spendscope.ratelimit.reset_tokens_s": 0.006,
            "gen_ai.response.finish_reasons": ["stop"],
        },
    )
    for _ in range(2):  # the second time from the attribute caches
        assert encode_records([record], envelope(resource, scope)) == (
            encode_spans(to_readable_spans([record], resource, scope)).SerializeToString()
        )


def test_unknown_value_types_are_refused() -> None:
    record = SpanRecord("x", 1, 2, 0, False, None, 1, 2, None, {"bad": {"a": 1}})
    with pytest.raises(TypeError):
        encode_records([record], envelope(RESOURCES[0], SCOPES[0]))


def test_unhashable_values_are_encoded_every_time() -> None:
    record = SpanRecord(
        "x", 1, 2, 0, False, None, 1, 2, None, {"names": ["a", "b"], "nested": (["x"], "y"), "n": 3}
    )
    resource, scope = RESOURCES[0], SCOPES[0]
    for _ in range(2):
        assert encode_records([record], envelope(resource, scope)) == (
            encode_spans(to_readable_spans([record], resource, scope)).SerializeToString()
        )
