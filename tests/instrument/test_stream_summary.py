"""The end-of-stream summary reads only the blocks that can matter, and concludes what reading all does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendscope.instrument import sse


def _chunk(index: int, content: str, finish: str | None, usage: Any, compact: bool) -> str:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "choices": [{"index": index, "delta": {"content": content}, "finish_reason": finish}],
        "usage": usage,
    }
    return json.dumps(body, separators=(",", ":") if compact else (", ", ": "))


CHUNKS = st.builds(
    _chunk,
    st.integers(0, 2),
    st.sampled_from(["word", "word", "word", "usage", '"usage":{', "[DONE]", '"finish_reason":"x"', "error"]),
    st.sampled_from([None, None, None, "stop", "length"]),
    st.just(None),
    st.sampled_from([True] * 9 + [False]),
)
CLEAN = st.one_of(
    CHUNKS,
    st.just('{"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'),
    st.just("[DONE]"),
)
EVENTS = st.one_of(
    CHUNKS,
    st.builds(
        lambda compact: json.dumps(
            {"id": "c", "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
            separators=(",", ":") if compact else (", ", ": "),
        ),
        st.booleans(),
    ),
    st.just("[DONE]"),
    st.just('{"error":{"code":"server_error","message":"boom"}}'),
    st.just('{"type":"response.completed","response":{"model":"m","usage":{"input_tokens":1}}}'),
    st.just("not json"),
)


def _stream(events: list[str], event_lines: list[bool]) -> bytes:
    parts = []
    for payload, named in zip(events, event_lines, strict=False):
        prefix = "event: message\n" if named else ""
        parts.append(f"{prefix}data: {payload}\n\n")
    return "".join(parts).encode()


@settings(max_examples=300, deadline=None)
@given(
    events=st.one_of(st.lists(CLEAN, max_size=40), st.lists(EVENTS, max_size=40)),
    event_lines=st.lists(st.sampled_from([False] * 7 + [True]), max_size=40),
    cut=st.integers(0, 400),
)
def test_window_scan_concludes_what_reading_every_event_does(
    events: list[str], event_lines: list[bool], cut: int
) -> None:
    data = _stream(events, event_lines + [False] * len(events))
    data = data[cut:]  # the kept tail can start anywhere
    fast: dict[str, Any] = {}
    fast_result = sse.summarize_stream(data, b"", "chat_completions", fast)
    reference: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sse, "_candidates", lambda blocks: None)
        reference_result = sse.summarize_stream(data, b"", "chat_completions", reference)
    assert (fast_result, fast) == (reference_result, reference)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.one_of(st.text(alphabet="ab é😀\n", max_size=30), st.just("\n\n"), st.text(max_size=3000)),
        max_size=60,
    ),
    last=st.integers(1, 20),
)
def test_the_tail_window_holds_the_blocks_a_whole_split_does(parts: list[str], last: int) -> None:
    data = "".join(parts).replace("\r", "").encode()
    blocks = data.decode("utf-8", "replace").rsplit("\n\n", last)
    expected = blocks[1:] if len(blocks) > last else blocks
    assert sse._blocks(data, last) == expected
