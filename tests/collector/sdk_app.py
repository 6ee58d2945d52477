"""An app instrumented with ``spendscope.instrument()`` calling the fake OpenAI with the real SDK.

Run as ``python -m tests.collector.sdk_app BASE_URL API_KEY``; OTEL_EXPORTER_OTLP_ENDPOINT points
at the collector. Spans are flushed when the interpreter exits.
"""

from __future__ import annotations

import sys

import openai

import spendscope


def main(base_url: str, api_key: str) -> int:
    spendscope.instrument(service_name="e2e-sdk")
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=2)
    with spendscope.attributes(user="u-1", feature="search", tags={"team": "core"}):
        for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4.1"):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello there"}])
        client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    with spendscope.attributes(feature="chat"):
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "stream please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass
        # A 429 on the first attempt, then the SDK's retry succeeds: two calls, one error.
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "retry me"}],
            extra_headers={"x-fake-fault": "status=429;code=rate_limit_exceeded;retry_after_ms=10;times=1"},
        )
        client.responses.create(model="gpt-4.1-mini", input="a responses call")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
