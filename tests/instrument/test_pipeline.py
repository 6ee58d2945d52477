"""spendscope's own pipeline: the direct recorder against the SDK span path, sampling, and its queue."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

import spendscope
from spendscope.instrument.call import DirectRecorder, Recorder
from spendscope.instrument.health import HEALTH
from spendscope.instrument.pipeline import Settings, SpanPipe
from spendscope.instrument.record import SpanRecord

from .conftest import OtlpSink, otlp_attrs

MESSAGES = [{"role": "user", "content": "hi"}]
ATTRS = {
    "gen_ai.provider.name": "openai",
    "gen_ai.request.stream": False,
    "spendscope.attempt": 1,
    "spendscope.ratelimit.reset_tokens_s": 0.0,
    "gen_ai.response.finish_reasons": ("stop",),
}
RESOURCE = Resource.create({"service.name": "pipeline"})
SCOPE = InstrumentationScope("spendscope.instrument", "0.1.0")
RECORD = SpanRecord("chat gpt-4o", 7, 9, 0, False, None, 1_000, 2_000, None, {"k": "v"})


def _parent(sampled: bool, remote: bool) -> Any:
    context = SpanContext(
        0x1234,
        0x42,
        remote,
        TraceFlags(TraceFlags.SAMPLED if sampled else 0),
        TraceState([("vendor", "v1")]),
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def _strip_span_ids(request: Any) -> Any:
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.span_id = b""
                if span.parent_span_id == b"":
                    span.trace_id = b""  # a root span: both paths draw a random trace id
    return request


@pytest.mark.parametrize(
    ("context", "error"),
    [
        (None, None),
        (_parent(sampled=True, remote=True), "HTTP 429"),
        (_parent(sampled=True, remote=False), None),
        (_parent(sampled=False, remote=True), None),
    ],
    ids=["root", "remote-parent-error", "local-parent", "unsampled-parent"],
)
def test_direct_recorder_makes_what_the_sdk_span_path_makes(
    sink: OtlpSink, monkeypatch: pytest.MonkeyPatch, context: Any, error: str | None
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{sink.url}/v1/traces")
    handle = spendscope.instrument(service_name="twins")
    try:
        direct = handle._patcher.recorder
        assert isinstance(direct, DirectRecorder)
        direct.emit("chat gpt-4o", context, dict(ATTRS), 1_000, 2_000, error)
        assert handle.force_flush(5000)
        # The reference: the same call through the SDK span path, on a provider of the same resource.
        exporter = InMemorySpanExporter()
        reference = TracerProvider(resource=handle.tracer_provider.resource)
        reference.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = reference.get_tracer("spendscope.instrument", spendscope.__version__)
        Recorder(tracer, False).emit("chat gpt-4o", context, dict(ATTRS), 1_000, 2_000, error)
    finally:
        handle.uninstrument()
    expected = exporter.get_finished_spans()
    if not expected:  # the unsampled parent: neither path records the call
        assert sink.spans() == []
        return
    assert len(sink.requests) == 1
    assert _strip_span_ids(sink.requests[0]) == _strip_span_ids(encode_spans(expected))


def test_samplers_from_the_environment_are_honoured(
    fake_openai: Any, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{sink.url}/v1/traces")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    handle = spendscope.instrument(service_name="sampled-out")
    try:
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert handle.force_flush(5000)
    finally:
        handle.uninstrument()
    assert sink.spans() == []


def test_a_processor_added_to_spendscopes_provider_sees_the_calls(
    fake_openai: Any, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{sink.url}/v1/traces")
    handle = spendscope.instrument(service_name="added-processor")
    extra = InMemorySpanExporter()
    try:
        handle.tracer_provider.add_span_processor(SimpleSpanProcessor(extra))  # type: ignore[attr-defined]
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        app_tracer = handle.tracer_provider.get_tracer("app")
        with app_tracer.start_as_current_span("app work"):
            pass
        assert handle.force_flush(5000)
    finally:
        handle.uninstrument()
    assert sorted(span.name for span in extra.get_finished_spans()) == ["app work", "chat gpt-4o"]
    exported = {span.name: span for _, span in sink.spans()}
    assert set(exported) == {"app work", "chat gpt-4o"}
    assert otlp_attrs(exported["chat gpt-4o"])["gen_ai.usage.input_tokens"] > 0


def test_app_spans_share_the_export_with_the_calls(
    fake_openai: Any, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{sink.url}/v1/traces")
    handle = spendscope.instrument(service_name="app-spans")
    try:
        tracer = handle.tracer_provider.get_tracer("app")
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0)
        with tracer.start_as_current_span("request") as parent:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert handle.force_flush(5000)
        stats = handle.stats()
    finally:
        handle.uninstrument()
    exported = {span.name: span for _, span in sink.spans()}
    assert exported["chat gpt-4o"].parent_span_id == parent.get_span_context().span_id.to_bytes(8, "big")
    assert exported["request"].span_id == parent.get_span_context().span_id.to_bytes(8, "big")
    assert stats["exported_spans"] >= 2


def test_flush_is_bounded_when_the_collector_hangs(fake_openai: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts, never answers
    port = listener.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5")
    handle = spendscope.instrument(service_name="hung")
    try:
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        started = time.perf_counter()
        assert handle.force_flush(300) is False
        assert time.perf_counter() - started < 2
    finally:
        started = time.perf_counter()
        handle.uninstrument()
        assert time.perf_counter() - started < 15
        listener.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_exports_its_own_calls(
    fake_openai: Any, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pre-fork servers (gunicorn) instrument in the parent: the child needs its own export thread.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{sink.url}/v1/traces")
    handle = spendscope.instrument(service_name="forked")
    try:
        pid = os.fork()
        if pid == 0:  # the child: one call, flushed, then leave without running the parent's cleanup
            status = 1
            try:
                client = openai.OpenAI(
                    base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0
                )
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                status = 0 if handle.force_flush(5000) else 2
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        handle.uninstrument()
    assert [span.name for _, span in sink.spans()] == ["chat gpt-4o-mini"]


@pytest.mark.parametrize("compression", [None, "gzip", "deflate", "none"])
def test_compression_follows_the_standard_variables(
    fake_openai: Any, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch, compression: str | None
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{sink.url}/v1/traces")
    if compression is not None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", compression)
    handle = spendscope.instrument(service_name="compressed")
    try:
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert handle.force_flush(5000)
    finally:
        handle.uninstrument()
    expected = {None: "gzip", "gzip": "gzip", "deflate": "deflate", "none": None}[compression]
    assert sink.headers[0].get("content-encoding") == expected
    assert [span.name for _, span in sink.spans()] == ["chat gpt-4o-mini"]


def test_queued_spans_are_exported_at_interpreter_exit(fake_openai: Any, sink: OtlpSink) -> None:
    app = (
        "import sys, openai, spendscope\n"
        "spendscope.instrument(service_name='exiting')\n"
        "client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)\n"
        "client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])\n"
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{sink.url}/v1/traces"}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "600000"  # nothing is exported before the exit
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", app, fake_openai.base_url, fake_openai.api_key],
        env=env,
        check=True,
        timeout=60,
    )
    assert time.perf_counter() - started < 30
    assert [span.name for _, span in sink.spans()] == ["chat gpt-4o-mini"]


class _BlockingExporter(InMemorySpanExporter):
    """A public exporter that holds the export thread until released: a collector that hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Any) -> Any:
        self.entered.set()
        assert self.release.wait(10)
        return super().export(spans)


def test_the_queue_stays_bounded_and_counts_what_it_drops() -> None:
    exporter = _BlockingExporter()
    settings = Settings(max_queue_size=8, schedule_delay_millis=600_000, max_export_batch_size=4)
    pipe = SpanPipe(exporter, RESOURCE, SCOPE, settings)
    before = HEALTH.snapshot().get("dropped_spans", 0)
    try:
        for _ in range(4):  # a full batch wakes the worker, which then hangs in the export
            pipe.add(RECORD)
        assert exporter.entered.wait(10)
        for _ in range(20):
            pipe.add(RECORD)
        assert len(pipe._queue) == 8
        assert HEALTH.snapshot().get("dropped_spans", 0) == before + 12
        exporter.release.set()
        assert pipe.force_flush(10_000)
        assert len(exporter.get_finished_spans()) == 4 + 8
    finally:
        exporter.release.set()
        pipe.shutdown()
