"""A finished call span as one flat record, and its conversion to an OpenTelemetry ``ReadableSpan``.

spendscope's own pipeline never builds SDK span objects for its calls: a call is complete when it is
recorded (every attribute, both timestamps), so the record goes straight to the export queue and is
encoded to OTLP bytes from there. :func:`to_readable_span` is the reference the fast path is tested
against, and the public path the exporter falls back to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

__all__ = ["SpanRecord", "new_record", "to_readable_span", "to_readable_spans"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SpanRecord(NamedTuple):
    """One CLIENT span of spendscope: ids, timing, status and attributes, nothing else."""

    name: str
    trace_id: int
    span_id: int
    parent_span_id: int  # 0: a root span
    parent_is_remote: bool
    trace_state: TraceState | None
    start_ns: int
    end_ns: int
    error: str | None  # status ERROR with this description, else status UNSET
    attributes: dict[str, Any]


def new_record(fields: tuple[Any, ...]) -> SpanRecord:
    """``SpanRecord(*fields)`` without the generated ``__new__`` (a Python call per record)."""
    return tuple.__new__(SpanRecord, fields)


def to_readable_span(record: SpanRecord, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    parent = (
        SpanContext(record.trace_id, record.parent_span_id, record.parent_is_remote, _SAMPLED)
        if record.parent_span_id
        else None
    )
    return ReadableSpan(
        record.name,
        SpanContext(record.trace_id, record.span_id, False, _SAMPLED, record.trace_state),
        parent,
        resource,
        record.attributes,
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, record.error) if record.error else Status(StatusCode.UNSET),
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=scope,
    )


def to_readable_spans(
    records: Sequence[SpanRecord], resource: Resource, scope: InstrumentationScope
) -> list[ReadableSpan]:
    return [to_readable_span(record, resource, scope) for record in records]
