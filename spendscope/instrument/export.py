"""The default export pipeline: spendscope's own provider, OTLP/HTTP to the collector, bounded.

The queue, the export thread and the counting live in :mod:`spendscope.instrument.pipeline`; this
module builds the provider and the exporter from the arguments and the standard variables.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from spendscope.instrument.pipeline import SpanPipe

__all__ = ["DEFAULT_ENDPOINT", "ExportFailureFilter", "OwnProvider", "build_provider", "remove_filter"]

DEFAULT_ENDPOINT = "http://127.0.0.1:4318/v1/traces"
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.http.transport",
    "opentelemetry.sdk._shared_internal",
)


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


class OwnProvider(TracerProvider):
    """The provider spendscope builds: its calls' records go straight to :attr:`pipe`.

    Records skip the provider's span processors. Should anyone add a processor of their own to this
    provider, :attr:`extra_processors` turns true and spendscope's calls take the SDK span path
    again, so that the added processor sees them.
    """

    def __init__(self, resource: Resource, scope: InstrumentationScope) -> None:
        super().__init__(resource=resource, shutdown_on_exit=False)
        self.scope = scope
        self.extra_processors = False
        public, raw, compress = _exporters()
        self.pipe = SpanPipe(public, resource, scope, raw=raw, compress=compress)
        super().add_span_processor(self.pipe)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        self.extra_processors = True
        super().add_span_processor(span_processor)


# zlib level 1: on spendscope's OTLP batches about 40% of the instructions of the exporter's own
# gzip (level 9) for about 8% more bytes (python -m benchmarks.sdk --instructions).
_LEVEL = 1


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    return packer.compress(data) + packer.flush()


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data, _LEVEL)


def _compression() -> str:
    """gzip, unless ``OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`` or ``OTEL_EXPORTER_OTLP_COMPRESSION`` differ."""
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") or os.environ.get(
        "OTEL_EXPORTER_OTLP_COMPRESSION", ""
    )
    value = raw.strip().lower() or "gzip"
    if value not in ("gzip", "deflate", "none"):
        logging.getLogger("spendscope").warning("spendscope: unknown OTLP compression %r; using gzip", raw)
        return "gzip"
    return value


def _exporters() -> tuple[Any, Any, Callable[[bytes], bytes] | None]:
    """The exporter of the public path, and one for already-compressed bytes with its compressor.

    Both are the OTLP/HTTP exporter, configured alike (endpoint, headers, TLS, timeout, retries
    from its arguments and the standard variables); the second one is told not to compress, and
    sends the content encoding the pipeline applied itself.
    """
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    name = _compression()
    headers = _headers()
    public = OTLPSpanExporter(endpoint=_endpoint(), headers=headers, compression=Compression(name))
    if name == "none":
        raw_headers, compress = headers, None
    else:
        raw_headers = {**(headers or {}), "content-encoding": name}
        compress = _gzip if name == "gzip" else _deflate
    raw = OTLPSpanExporter(endpoint=_endpoint(), headers=raw_headers, compression=Compression.NoCompression)
    return public, raw, compress


def build_provider(
    service_name: str | None, scope: InstrumentationScope
) -> tuple[OwnProvider, logging.Filter]:
    """A private TracerProvider exporting OTLP/HTTP protobuf to the collector."""
    attributes: dict[str, Any] = {"telemetry.distro.name": "spendscope"}
    if service_name:
        attributes["service.name"] = service_name
    resource = Resource.create(attributes)  # also reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    log_filter = ExportFailureFilter()
    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).addFilter(log_filter)
    return OwnProvider(resource, scope), log_filter


def remove_filter(log_filter: logging.Filter) -> None:
    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).removeFilter(log_filter)
