"""The default pipeline: spendscope's own provider exports real OTLP/HTTP protobuf, parented and complete."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

import spendscope

from .conftest import OtlpSink, otlp_attrs


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
    attrs = otlp_attrs(ok)
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert ok.status.code == ok.status.STATUS_CODE_UNSET
    assert failed.status.code == failed.status.STATUS_CODE_ERROR
    assert otlp_attrs(failed)["error.type"] == "rate_limit_exceeded"
    assert failed.parent_span_id == b""  # no app span around it: a root span
    assert sink.headers[0]["authorization"] == "Bearer s3cret"
    assert handle.stats()["exported_spans"] >= 2
