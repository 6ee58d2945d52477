"""Every kind of OpenAI call through the real SDK becomes one span that matches the fake's ledger."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from spendscope import semconv as sc

from .conftest import Spans

MESSAGES = [{"role": "user", "content": "Say hello to the people who read cost reports."}]


def assert_matches(span: dict[str, Any], row: Any) -> None:
    """Span attributes against the fake's ledger row: the truth of what was served."""
    assert span[sc.GEN_AI_RESPONSE_MODEL] == row.model
    assert span[sc.GEN_AI_USAGE_INPUT_TOKENS] == row.input_tokens
    assert span[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == row.output_tokens
    assert span.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0) == row.cached_tokens
    assert span.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, 0) == row.reasoning_tokens
    assert span[sc.HTTP_RESPONSE_STATUS_CODE] == row.status
    assert span[sc.ATTEMPT] == row.retry_count
    if row.service_tier:
        assert span[sc.OPENAI_RESPONSE_SERVICE_TIER] == row.service_tier
    if row.request_id:
        assert span[sc.OPENAI_REQUEST_ID] == row.request_id


def test_chat_completion_json(client: openai.OpenAI, fake_openai: Any, spans: Spans) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        service_tier="flex",
        extra_headers={"x-fake-cached-tokens": "4"},
    )
    span = spans.one()
    (row,) = fake_openai.ledger.rows()
    assert_matches(span, row)
    assert span[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert span[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert span[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert span[sc.OPENAI_REQUEST_SERVICE_TIER] == "flex"
    assert span[sc.GEN_AI_RESPONSE_ID] == reply.id
    assert span[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 4
    assert span[sc.USAGE_SOURCE] == "response"
    assert span[sc.GEN_AI_REQUEST_STREAM] is False
    assert span[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert isinstance(span[sc.SERVER_PORT], int)
    assert list(span[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    # Rate-limit headroom: integers and seconds, from the fake's headers.
    for key in (
        sc.RATELIMIT_LIMIT_REQUESTS,
        sc.RATELIMIT_REMAINING_REQUESTS,
        sc.RATELIMIT_LIMIT_TOKENS,
        sc.RATELIMIT_REMAINING_TOKENS,
    ):
        assert isinstance(span[key], int)
    assert isinstance(span[sc.RATELIMIT_RESET_REQUESTS_S], float)
    assert spans.all()[0].name == "chat gpt-4o"
    assert reply.choices[0].message.content


def test_chat_stream_with_usage(client: openai.OpenAI, fake_openai: Any, spans: Spans) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    span = spans.one()
    (row,) = fake_openai.ledger.rows()
    assert_matches(span, row)
    assert span[sc.GEN_AI_REQUEST_STREAM] is True
    assert span[sc.STREAM_COMPLETED] is True
    assert span[sc.USAGE_SOURCE] == "stream"
    assert 0 < span[sc.GEN_AI_TIME_TO_FIRST_CHUNK] < 5


def test_chat_stream_without_usage_records_no_tokens(client: openai.OpenAI, spans: Spans) -> None:
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass
    span = spans.one()
    assert span[sc.USAGE_SOURCE] == "missing"
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in span  # absent, never 0
    assert span[sc.STREAM_COMPLETED] is True
    assert span[sc.GEN_AI_RESPONSE_MODEL]


def test_responses_json_and_stream(client: openai.OpenAI, fake_openai: Any, spans: Spans) -> None:
    client.responses.create(model="gpt-5", input="hello")
    with client.responses.stream(model="gpt-5", input="hello") as stream:
        for _ in stream:
            pass
    first, second = spans.attrs()
    rows = fake_openai.ledger.rows()
    assert_matches(first, rows[0])
    assert_matches(second, rows[1])
    assert first[sc.OPENAI_API_TYPE] == second[sc.OPENAI_API_TYPE] == "responses"
    assert second[sc.USAGE_SOURCE] == "stream"
    assert second[sc.STREAM_COMPLETED] is True
    assert rows[0].reasoning_tokens > 0  # a reasoning model: reasoning is inside output tokens


def test_embeddings_and_legacy_completions(client: openai.OpenAI, fake_openai: Any, spans: Spans) -> None:
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once")
    embedding, completion = spans.attrs()
    rows = fake_openai.ledger.rows()
    assert embedding[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert embedding[sc.GEN_AI_USAGE_INPUT_TOKENS] == rows[0].input_tokens
    assert completion[sc.GEN_AI_OPERATION_NAME] == "text_completion"
    assert_matches(completion, rows[1])


def test_non_inference_paths_get_no_span(client: openai.OpenAI, spans: Spans) -> None:
    client.models.list()
    assert spans.all() == []


def test_attribution_context_and_request_fields(client: openai.OpenAI, spans: Spans) -> None:
    import spendscope

    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, user="req-user")
    with (
        spendscope.attributes(user="u-17", feature="search", tags={"team": "growth"}),
        spendscope.attributes(tags={"tenant": "acme"}),
    ):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, user="req-user")
    plain, attributed = spans.attrs()
    assert plain[sc.USER] == "req-user"
    assert sc.FEATURE not in plain
    assert attributed[sc.USER] == "u-17"
    assert attributed[sc.FEATURE] == "search"
    assert attributed[sc.TAG_PREFIX + "team"] == "growth"
    assert attributed[sc.TAG_PREFIX + "tenant"] == "acme"


def test_async_client_and_attribution_across_await(aclient: openai.AsyncOpenAI, spans: Spans) -> None:
    import spendscope

    async def one(user: str) -> None:
        with spendscope.attributes(user=user):
            await asyncio.sleep(0)
            stream = await aclient.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            async for _ in stream:
                pass

    async def main() -> None:
        await asyncio.gather(one("a"), one("b"), one("c"))
        await aclient.close()

    asyncio.run(main())
    users = sorted(span[sc.USER] for span in spans.attrs())
    assert users == ["a", "b", "c"]
    assert all(span[sc.STREAM_COMPLETED] is True for span in spans.attrs())
    assert all(span[sc.USAGE_SOURCE] == "stream" for span in spans.attrs())


def test_azure_deployment_path(fake_openai: Any, spans: Spans) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=fake_openai.root_url, api_key=fake_openai.azure_api_key, api_version="2024-10-21"
    )
    client.chat.completions.create(model="my-gpt4o", messages=MESSAGES)
    span = spans.one()
    assert span[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert span[sc.GEN_AI_REQUEST_MODEL] == "my-gpt4o"
    assert span[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0


@pytest.mark.parametrize("raw", ["with_raw_response", "with_streaming_response"])
def test_raw_and_streaming_response_wrappers(client: openai.OpenAI, spans: Spans, raw: str) -> None:
    if raw == "with_raw_response":
        response = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        assert response.headers.get("x-request-id")
        assert response.parse().choices
    else:
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES
        ) as response:
            assert response.parse().choices
    span = spans.one()
    assert span[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert span[sc.USAGE_SOURCE] == "response"
