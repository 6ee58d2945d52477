"""The OpenTelemetry internals the SDK reads are still there; without them it takes the public path.

If a test here fails after an OpenTelemetry upgrade, the SDK still works (it exports through the
exporter's public ``export``) but has lost its fast path: update ``spendscope/instrument/otel_internals.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from spendscope.instrument.health import HEALTH
from spendscope.instrument.otel_internals import bytes_sender, suppress_instrumentation_key
from spendscope.instrument.otlp import encode_records, envelope
from spendscope.instrument.pipeline import SpanPipe
from spendscope.instrument.record import SpanRecord, to_readable_span

from .conftest import OtlpSink, otlp_attrs

RESOURCE = Resource.create({"service.name": "internals"})
SCOPE = InstrumentationScope("spendscope.instrument", "0.1.0")
RECORD = SpanRecord(
    "chat gpt-4o", 7, 9, 0, False, None, 1_000, 2_000, None, {"gen_ai.usage.input_tokens": 12, "k": "v"}
)


def test_the_otlp_exporter_still_has_a_bytes_client(sink: OtlpSink) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{sink.url}/v1/traces", compression=Compression.Gzip)
    send = bytes_sender(exporter)
    assert send is not None, (
        "OTLPSpanExporter._client.export(data) is gone or changed: spendscope exports through the "
        "public path (slower); adapt spendscope/instrument/otel_internals.py to this OpenTelemetry release"
    )
    assert send(encode_records([RECORD], envelope(RESOURCE, SCOPE))) is True
    ((_, span),) = sink.spans()
    assert span.name == "chat gpt-4o"
    assert otlp_attrs(span) == {"gen_ai.usage.input_tokens": 12, "k": "v"}
    assert sink.headers[0]["content-encoding"] == "gzip"  # the exporter's own compression
    exporter.shutdown()


def test_the_suppress_instrumentation_key_is_still_there() -> None:
    assert suppress_instrumentation_key() is not None, (
        "opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY is gone: spendscope's export could be "
        "traced by an app's HTTP instrumentation; adapt spendscope/instrument/otel_internals.py"
    )


def test_without_a_bytes_client_records_go_through_the_public_export() -> None:
    exporter = InMemorySpanExporter()  # a public SpanExporter: no ``_client``
    assert bytes_sender(exporter) is None
    pipe = SpanPipe(exporter, RESOURCE, SCOPE)
    try:
        pipe.add(RECORD)
        assert pipe.force_flush(5000)
        (span,) = exporter.get_finished_spans()
        expected = to_readable_span(RECORD, RESOURCE, SCOPE)
        assert span.to_json() == expected.to_json()
    finally:
        pipe.shutdown()


class _RenamedClient(OTLPSpanExporter):
    """What a release that renames the exporter's HTTP client would look like."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._http = self.__dict__.pop("_client")

    def export(self, spans: Any) -> Any:
        self._client = self._http
        try:
            return super().export(spans)
        finally:
            del self._client

    def shutdown(self) -> None:
        self._client = self._http
        super().shutdown()


class _ChangedResult(OTLPSpanExporter):
    """What a release whose client answers another kind of result would look like."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._real = self._client

        class Client:
            def export(self, data: bytes) -> Any:
                return object()  # no ``.success``

        self._client = Client()

    def export(self, spans: Any) -> Any:
        changed, self._client = self._client, self._real
        try:
            return super().export(spans)
        finally:
            self._client = changed

    def shutdown(self) -> None:
        self._client = self._real
        super().shutdown()


@pytest.mark.parametrize("exporter_class", [_RenamedClient, _ChangedResult])
def test_changed_internals_fall_back_to_the_public_export(sink: OtlpSink, exporter_class: Any) -> None:
    before = HEALTH.snapshot().get("exported_spans", 0)
    pipe = SpanPipe(exporter_class(endpoint=f"{sink.url}/v1/traces"), RESOURCE, SCOPE)
    try:
        for _ in range(2):  # the second batch goes straight to the public path
            pipe.add(RECORD)
            assert pipe.force_flush(5000)
    finally:
        pipe.shutdown()
    assert pipe._send is None
    assert HEALTH.snapshot().get("exported_spans", 0) == before + 2
    assert [span.name for _, span in sink.spans()] == ["chat gpt-4o", "chat gpt-4o"]
    assert otlp_attrs(sink.spans()[0][1]) == {"gen_ai.usage.input_tokens": 12, "k": "v"}
