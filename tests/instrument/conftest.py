"""SDK test fixtures: spendscope instrumented into an in-memory span exporter, and an OTLP sink."""

from __future__ import annotations

import gzip
import os
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spendscope

OPENAI_MAJOR = int(openai.__version__.split(".")[0])


class Spans:
    """The spans spendscope emitted, with a few readers for assertions."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def attrs(self) -> list[dict[str, Any]]:
        return [dict(span.attributes or {}) for span in self.all()]

    def one(self) -> dict[str, Any]:
        spans = self.attrs()
        assert len(spans) == 1, spans
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture(autouse=True)
def _raise_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug in the instrumentation fails the test instead of being logged and swallowed.
    monkeypatch.setenv("SPENDSCOPE_RAISE_INTERNAL_ERRORS", "1")


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handle = spendscope.instrument(tracer_provider=provider)
    try:
        yield Spans(exporter)
    finally:
        handle.uninstrument()
        provider.shutdown()


@pytest.fixture
def client(fake_openai: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=2) as c:
        yield c


@pytest.fixture
def aclient(fake_openai: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=2)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") == "1"


class OtlpSink:
    """A loopback OTLP/HTTP endpoint that keeps every decoded span."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                encoding = self.headers.get("content-encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                sink.requests.append(ExportTraceServiceRequest.FromString(body))
                sink.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[Any]:
        return [
            (resource_spans.resource, span)
            for request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    server = OtlpSink()
    yield server
    server.server.shutdown()


def otlp_attrs(span: Any) -> dict[str, Any]:
    """A protobuf span's attributes as a plain dict (arrays as lists)."""
    out: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        out[kv.key] = (
            [getattr(v, v.WhichOneof("value")) for v in value.values] if kind == "array_value" else value
        )
    return out
