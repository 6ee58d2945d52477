"""An app with the official OpenTelemetry OpenAI instrumentation and no spendscope at all.

Run as ``python -m tests.collector.official_app BASE_URL API_KEY COLLECTOR_URL``.
"""

from __future__ import annotations

import sys

import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main(base_url: str, api_key: str, collector: str) -> int:
    assert "spendscope" not in sys.modules
    provider = TracerProvider(resource=Resource.create({"service.name": "official-app"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector}/v1/traces")))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4.1-nano"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "count to three"}])
    client.embeddings.create(model="text-embedding-3-small", input="embed me")
    provider.shutdown()
    assert "spendscope" not in sys.modules
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
