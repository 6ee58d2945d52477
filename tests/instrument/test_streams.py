"""Every stream lifecycle ends its span once, with the right status: sync and async, both SDK majors."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from spendscope import semconv as sc

from .conftest import Spans

MESSAGES = [{"role": "user", "content": "Write a short poem about invoices."}]
USAGE = {"include_usage": True}


def _stream(client: openai.OpenAI, fault: str | None = None, **kwargs: Any) -> Any:
    headers = {"x-fake-chunks": "12"}
    if fault:
        headers["x-fake-fault"] = fault
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options=USAGE,
        extra_headers=headers,
        **kwargs,
    )


def test_early_break_in_context_manager(client: openai.OpenAI, spans: Spans) -> None:
    with _stream(client) as stream:
        for _ in stream:
            break
    span = spans.one()
    assert span[sc.STREAM_COMPLETED] is False
    assert span[sc.USAGE_SOURCE] == "missing"
    assert sc.GEN_AI_TIME_TO_FIRST_CHUNK in span
    assert spans.all()[0].status.status_code is not StatusCode.ERROR


def test_explicit_close(client: openai.OpenAI, spans: Spans) -> None:
    stream = _stream(client)
    next(iter(stream))
    assert spans.all() == []  # still open: no span yet
    stream.close()
    assert spans.one()[sc.STREAM_COMPLETED] is False


def test_abandoned_stream_ends_on_garbage_collection(client: openai.OpenAI, spans: Spans) -> None:
    stream = _stream(client)
    next(iter(stream))
    del stream
    for _ in range(3):
        gc.collect()
    span = spans.one()
    assert span[sc.STREAM_COMPLETED] is False


def test_truncated_stream_is_an_error(client: openai.OpenAI, spans: Spans) -> None:
    with pytest.raises((openai.APIConnectionError, Exception)) as excinfo:
        for _ in _stream(client, "truncate=3"):
            pass
    assert (
        "RemoteProtocolError"
        in repr(excinfo.value) + repr(excinfo.value.__cause__) + type(excinfo.value).__name__
    )
    span = spans.one()
    assert span[sc.STREAM_COMPLETED] is False
    assert span[sc.ERROR_TYPE] == "RemoteProtocolError"
    assert spans.all()[0].status.status_code is StatusCode.ERROR


def test_mid_stream_error_event(client: openai.OpenAI, spans: Spans) -> None:
    with pytest.raises(openai.APIError), _stream(client, "stream_error=2;code=server_error") as stream:
        for _ in stream:
            pass
    span = spans.one()
    assert span[sc.ERROR_TYPE] == "server_error"
    assert spans.all()[0].status.status_code is StatusCode.ERROR


def test_malformed_sse_reaches_app_unchanged(client: openai.OpenAI, spans: Spans) -> None:
    with pytest.raises(ValueError), _stream(client, "malformed=2") as stream:  # json.JSONDecodeError
        for _ in stream:
            pass
    assert len(spans.all()) == 1


def test_missing_done_and_usage(client: openai.OpenAI, spans: Spans) -> None:
    for _ in _stream(client, "no_done;no_usage"):
        pass
    span = spans.one()
    assert span[sc.USAGE_SOURCE] == "missing"
    assert span[sc.STREAM_COMPLETED] is True  # read to the end: a clean EOF
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in span


@pytest.mark.parametrize("fault", ["comments;crlf", "split=7", "multiline", "legacy"])
def test_wire_variants_still_yield_usage(
    client: openai.OpenAI, fake_openai: Any, spans: Spans, fault: str
) -> None:
    for _ in _stream(client, fault):
        pass
    span = spans.one()
    (row,) = fake_openai.ledger.rows()
    assert span[sc.USAGE_SOURCE] == "stream"
    assert span[sc.GEN_AI_USAGE_INPUT_TOKENS] == row.input_tokens
    assert span[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == row.output_tokens


def test_responses_stream_failure_event(client: openai.OpenAI, spans: Spans) -> None:
    with pytest.raises(openai.APIError):
        stream = client.responses.create(
            model="gpt-4o",
            input="hi",
            stream=True,
            extra_headers={"x-fake-fault": "stream_error=3;code=server_error"},
        )
        for _ in stream:
            pass
    del stream
    gc.collect()
    span = spans.one()
    assert span[sc.ERROR_TYPE] == "server_error"


def test_raw_streaming_response(client: openai.OpenAI, spans: Spans) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=USAGE
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    span = spans.one()
    assert span[sc.USAGE_SOURCE] == "stream"
    assert span[sc.STREAM_COMPLETED] is True


def test_async_lifecycles(aclient: openai.AsyncOpenAI, spans: Spans) -> None:
    async def main() -> None:
        # exhaustion
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=USAGE
        )
        async for _ in stream:
            pass
        # early break inside the async context manager
        async with await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=USAGE
        ) as stream:
            async for _ in stream:
                break
        # explicit close
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=USAGE
        )
        await stream.__anext__()
        await stream.close()
        # truncated
        with pytest.raises(Exception):  # noqa: B017
            stream = await aclient.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options=USAGE,
                extra_headers={"x-fake-fault": "truncate=2"},
            )
            async for _ in stream:
                pass
        await aclient.close()

    asyncio.run(main())
    completed = [span[sc.STREAM_COMPLETED] for span in spans.attrs()]
    assert completed == [True, False, False, False]
    assert spans.attrs()[0][sc.USAGE_SOURCE] == "stream"
    assert spans.attrs()[3][sc.ERROR_TYPE] == "RemoteProtocolError"


def test_a_long_stream_past_the_kept_tail_is_summarized(client: openai.OpenAI, spans: Spans) -> None:
    chunks = 1500  # several times the 64 KiB kept tail: it is trimmed more than once mid-stream
    received = []
    for event in client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options=USAGE,
        extra_headers={"x-fake-chunks": str(chunks)},
    ):
        if event.choices and event.choices[0].delta.content:
            received.append(event.choices[0].delta.content)
    assert len(received) == chunks
    span = spans.one()
    assert span[sc.STREAM_COMPLETED] is True
    assert span[sc.USAGE_SOURCE] == "stream"
    assert span[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks
    assert span[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert span[sc.GEN_AI_RESPONSE_MODEL]
