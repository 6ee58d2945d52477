"""Property: the app reads exactly the same bytes, in the same chunks, with or without spendscope."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

import spendscope

MODULES = []
for _name in ("httpx", "httpx2"):
    try:
        MODULES.append(importlib.import_module(_name))
    except ImportError:
        pass

_CHUNK = json.dumps(
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "hé"}}],
    }
)
_USAGE = json.dumps({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
BODIES = st.one_of(
    st.just(
        ("text/event-stream", (f"data: {_CHUNK}\n\n" * 3 + f"data: {_USAGE}\n\ndata: [DONE]\n\n").encode())
    ),
    st.just(
        (
            "text/event-stream",
            f"data: {_CHUNK}\r\n\r\ndata: {{not json\n\n: keep-alive\n\nevent: x\n".encode(),
        )
    ),
    st.just(("application/json", json.dumps({"model": "m", "usage": {"prompt_tokens": 1}}).encode())),
    st.tuples(st.sampled_from(["text/event-stream", "application/json"]), st.binary(max_size=600)),
)


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    chunks, last = [], 0
    for p in [*points, len(body)]:
        if p > last:
            chunks.append(body[last:p])
            last = p
    return chunks


def _read(module: Any, chunks: list[bytes], content_type: str) -> list[bytes]:
    class Body(module.SyncByteStream):  # type: ignore[misc, name-defined]
        def __iter__(self) -> Iterator[bytes]:
            yield from chunks

    def handler(request: Any) -> Any:
        return module.Response(200, headers={"content-type": content_type}, stream=Body())

    with module.Client(transport=module.MockTransport(handler)) as client:
        request = client.build_request(
            "POST", "http://gateway.local/v1/chat/completions", json={"model": "m", "stream": True}
        )
        response = client.send(request, stream=True)
        try:
            return list(response.iter_raw())
        finally:
            response.close()


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_chunks_identical_with_and_without_instrumentation(
    module: Any, body: tuple[str, bytes], cuts: list[int]
) -> None:
    content_type, data = body
    chunks = _split(data, cuts)
    plain = _read(module, chunks, content_type)
    handle = spendscope.instrument(tracer_provider=TracerProvider())
    try:
        instrumented = _read(module, chunks, content_type)
    finally:
        handle.uninstrument()
    assert instrumented == plain == chunks
