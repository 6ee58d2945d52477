"""The default pipeline: spendscope's own provider exports real OTLP/HTTP protobuf, parented and complete."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

import spendscope


class OtlpSink:
    """A loopback OTLP/HTTP endpoint that keeps every decoded span."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
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


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        out[kv.key] = [v.string_value for v in value.values] if kind == "array_value" else value
    return out


def test_default_pipeline_exports_parented_spans(
    fake_openai: Any, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url)
    monkeypatch.setenv("SPENDSCOPE_TOKEN", "s3cret")
    handle = spendscope.instrument(service_name="export-test")
    app_tracer = TracerProvider().get_tracer("app")
    try:
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0)
        with app_tracer.start_as_current_span("handle-request") as parent:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-fake-fault": "status=429;code=rate_limit_exceeded"},
            )
        assert handle.force_flush(5000)
    finally:
        handle.uninstrument()
    deadline = time.monotonic() + 5
    while len(sink.spans()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (resource, ok), (_, failed) = sink.spans()
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "export-test"
    assert ok.name == "chat gpt-4o"
    assert ok.kind == ok.SPAN_KIND_CLIENT
    assert ok.trace_id == parent.get_span_context().trace_id.to_bytes(16, "big")
    assert ok.parent_span_id == parent.get_span_context().span_id.to_bytes(8, "big")
    assert ok.end_time_unix_nano > ok.start_time_unix_nano
    attrs = _attrs(ok)
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert ok.status.code == ok.status.STATUS_CODE_UNSET
    assert failed.status.code == failed.status.STATUS_CODE_ERROR
    assert _attrs(failed)["error.type"] == "rate_limit_exceeded"
    assert failed.parent_span_id == b""  # no app span around it: a root span
    assert sink.headers[0]["authorization"] == "Bearer s3cret"
    assert handle.stats()["exported_spans"] >= 2
