"""instrument() / uninstrument(): idempotent, exact restore, host restriction, never breaking the app."""

from __future__ import annotations

import importlib
import time
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spendscope

MESSAGES = [{"role": "user", "content": "hi"}]


def _http_modules() -> list[Any]:
    modules = []
    for name in ("httpx", "httpx2"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            pass
    return modules


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_uninstrument_restores_originals_and_stops_spans(fake_openai: Any) -> None:
    originals = {
        (m.__name__, cls): getattr(m, cls).__dict__["send"]
        for m in _http_modules()
        for cls in ("Client", "AsyncClient")
    }
    provider, exporter = _provider()
    handle = spendscope.instrument(tracer_provider=provider)
    assert any(m.Client.__dict__["send"] is not originals[(m.__name__, "Client")] for m in _http_modules())
    handle.uninstrument()
    for (module_name, cls), original in originals.items():
        assert getattr(importlib.import_module(module_name), cls).__dict__["send"] is original
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert exporter.get_finished_spans() == ()
    handle.uninstrument()  # a second call is a no-op
    spendscope.uninstrument()


def test_instrument_twice_gives_one_span(fake_openai: Any) -> None:
    provider, exporter = _provider()
    first = spendscope.instrument(tracer_provider=provider)
    second = spendscope.instrument(tracer_provider=provider)
    try:
        assert first is second
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(exporter.get_finished_spans()) == 1
    finally:
        spendscope.uninstrument()


def test_hosts_restrict_recognition(fake_openai: Any) -> None:
    provider, exporter = _provider()
    spendscope.instrument(tracer_provider=provider, hosts=["api.openai.com"])
    try:
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert exporter.get_finished_spans() == ()
    finally:
        spendscope.uninstrument()
    spendscope.instrument(tracer_provider=provider, hosts=["127.0.0.1"])
    try:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(exporter.get_finished_spans()) == 1
    finally:
        spendscope.uninstrument()


def test_instrumentation_bug_never_reaches_the_app(fake_openai: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from spendscope.instrument import call as call_module

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("injected parser failure")

    monkeypatch.setenv("SPENDSCOPE_RAISE_INTERNAL_ERRORS", "0")
    monkeypatch.setattr(call_module, "response_attributes", broken)
    monkeypatch.setattr(call_module, "summarize_stream", broken)
    provider, _exporter = _provider()
    handle = spendscope.instrument(tracer_provider=provider)
    try:
        before = handle.stats().get("internal_errors", 0)
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key)
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert reply.choices[0].message.content
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        assert chunks[-1].usage is not None
        assert handle.stats()["internal_errors"] >= before + 2
    finally:
        spendscope.uninstrument()


@pytest.mark.parametrize("collector", ["down", "hung"])
def test_collector_unreachable_calls_succeed_queue_bounded(
    fake_openai: Any, monkeypatch: pytest.MonkeyPatch, collector: str
) -> None:
    import socket

    # "down" refuses connections; "hung" accepts them and never answers, so every export waits
    # for its timeout and the spans of the calls made meanwhile overflow the bounded queue.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if collector == "down":
        listener.close()
    else:
        listener.listen(64)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "16")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8")
    handle = spendscope.instrument(service_name="unreachable-test")
    try:
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0)
        started = time.perf_counter()
        for _ in range(60):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        per_call = (time.perf_counter() - started) / 60
        # Export runs in the background: a dead collector must not add its timeouts to calls.
        assert per_call < 0.25
        if collector == "hung":
            assert handle.stats().get("dropped_spans", 0) > 0
    finally:
        started = time.perf_counter()
        handle.uninstrument()
        assert time.perf_counter() - started < 15  # shutdown is bounded too
        listener.close()
