"""The default export pipeline: OTLP/HTTP to the collector, in a background thread, bounded.

The app never waits on the collector: spans go into a bounded queue that a worker thread exports.
When the collector is down the queue fills and further spans are dropped and counted (not queued
without bound, not retried forever), and the exporter's failure is logged once per outage.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from spendscope.instrument.health import HEALTH

__all__ = ["DEFAULT_ENDPOINT", "ExportFailureFilter", "build_provider"]

DEFAULT_ENDPOINT = "http://127.0.0.1:4318/v1/traces"
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.http.transport",
    "opentelemetry.sdk._shared_internal",
)


class _CountingExporter(SpanExporter):
    """Counts exported and failed spans; logs the first failure of each outage."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            HEALTH.count("exported_spans", len(spans))
            if self._failing:
                self._failing = False
                HEALTH.forget("export")
                logging.getLogger("spendscope").info("spendscope: export to the collector recovered")
        else:
            HEALTH.count("export_failed_spans", len(spans))
            self._failing = True
            HEALTH.log_once(
                "export", "spendscope: spans could not be exported to the collector; calls are unaffected"
            )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _BoundedBatchProcessor(BatchSpanProcessor):
    """A batch processor that counts the spans it drops when its queue is full."""

    def __init__(self, exporter: SpanExporter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        inner = getattr(self, "_batch_processor", None)
        self._queue = getattr(inner, "_queue", None)
        self._max = getattr(inner, "_max_queue_size", None)

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue
        if queue is not None and self._max is not None and len(queue) >= self._max:
            # Dropping the newest span here keeps the SDK from logging a warning per span.
            HEALTH.count("dropped_spans")
            return
        super().on_end(span)


class ExportFailureFilter(logging.Filter):
    """Silences the exporter's per-batch failure warnings (the SDK logs once, itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR and "export" not in record.getMessage().lower()


def _endpoint() -> str | None:
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None  # the exporter reads the standard variables itself
    return DEFAULT_ENDPOINT


def _headers() -> dict[str, str] | None:
    token = os.environ.get("SPENDSCOPE_TOKEN")
    if token and not (
        os.environ.get("OTEL_EXPORTER_OTLP_HEADERS") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
    ):
        return {"authorization": f"Bearer {token}"}
    return None


def build_provider(service_name: str | None) -> tuple[TracerProvider, logging.Filter]:
    """A private TracerProvider exporting OTLP/HTTP protobuf to the collector."""
    from opentelemetry.exporter.otlp.proto.http import Compression

    from spendscope.instrument.otlp import FastOTLPSpanExporter

    attributes: dict[str, Any] = {"telemetry.distro.name": "spendscope"}
    if service_name:
        attributes["service.name"] = service_name
    resource = Resource.create(attributes)  # also reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    compression = None if os.environ.get("OTEL_EXPORTER_OTLP_COMPRESSION") else Compression.Gzip
    exporter = FastOTLPSpanExporter(endpoint=_endpoint(), headers=_headers(), compression=compression)
    kwargs: dict[str, Any] = {}
    if not os.environ.get("OTEL_BSP_SCHEDULE_DELAY"):
        kwargs["schedule_delay_millis"] = 1000
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(_BoundedBatchProcessor(_CountingExporter(exporter), **kwargs))
    log_filter = ExportFailureFilter()
    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).addFilter(log_filter)
    return provider, log_filter


def remove_filter(log_filter: logging.Filter) -> None:
    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).removeFilter(log_filter)
