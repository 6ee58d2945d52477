"""SDK test fixtures: spendscope instrumented into an in-memory span exporter."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest
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
