"""The fake OpenAI server against the real openai SDK: every endpoint parses, headers and ledger agree."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import struct
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from spendscope.fake_openai import FakeOpenAI

CHAT = [{"role": "user", "content": "hello there"}]  # 3 + ceil(11/4)=3 -> 6, + 3 priming = 9 tokens


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0) as c:
        yield c


def raw_http(fake: FakeOpenAI, request: bytes, timeout: float = 5.0) -> bytes:
    """One request on a fresh connection, read to EOF (Connection: close)."""
    with socket.create_connection((fake.host, fake.port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def post(fake: FakeOpenAI, path: str, body: dict[str, Any], extra: str = "") -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fake.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        f"Connection: close\r\n{extra}\r\n"
    )
    return raw_http(fake, head.encode() + payload)


def test_chat_json_matches_ledger(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=CHAT, user="u-1", extra_headers={"x-fake-cached-tokens": "4"}
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-2024-08-06"
    assert completion.service_tier == "default"
    assert completion.system_fingerprint is None
    assert completion.choices[0].message.content == "The quick brown fox jumps over the lazy"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 8, 17)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 4
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0

    headers = raw.headers
    assert headers["x-request-id"].startswith("req_") and len(headers["x-request-id"]) == 36
    assert headers["openai-organization"] == fake_openai.organization
    assert headers["openai-project"] == fake_openai.project
    assert headers["openai-version"] == "2020-10-01"
    assert int(headers["openai-processing-ms"]) >= 1
    assert headers["content-encoding"] == "gzip"
    assert int(headers["x-ratelimit-remaining-requests"]) < int(headers["x-ratelimit-limit-requests"])
    assert headers["x-ratelimit-reset-requests"].endswith("s")

    (row,) = fake_openai.ledger.rows()
    assert row.endpoint == "chat.completions"
    assert (row.request_model, row.model, row.status, row.billed) == (
        "gpt-4o",
        "gpt-4o-2024-08-06",
        200,
        True,
    )
    assert (row.input_tokens, row.cached_tokens, row.output_tokens) == (9, 4, 8)
    assert row.request_id == headers["x-request-id"]
    assert row.user_id == "u-1"
    assert row.project_id == fake_openai.project
    assert row.api_key_id == fake_openai.key_id(fake_openai.api_key)
    assert row.usage_reported and not row.stream and row.retry_count == 0


def test_cached_tokens_are_capped_at_the_prompt(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=CHAT, extra_headers={"x-fake-cached-tokens": "5000"}
    )
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == completion.usage.prompt_tokens


@pytest.mark.parametrize(
    ("requested", "reported"), [("flex", "flex"), ("priority", "priority"), ("auto", "default")]
)
def test_service_tier_mapping(client: openai.OpenAI, requested: Any, reported: str) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=CHAT, service_tier=requested)
    assert completion.service_tier == reported


def test_chat_stream_with_usage(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The quick brown fox jumps over the lazy"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    assert all(c.obfuscation for c in chunks)
    assert all(c.service_tier == "default" for c in chunks)
    (row,) = fake_openai.ledger.rows()
    assert row.stream and row.usage_reported and row.output_tokens == 8


def test_chat_stream_wire_format(fake_openai: FakeOpenAI) -> None:
    body = {"model": "gpt-4o", "messages": CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = post(fake_openai, "/v1/chat/completions", body, "Accept-Encoding: gzip\r\n")
    head, _, rest = response.partition(b"\r\n\r\n")
    assert b"content-type: text/event-stream; charset=utf-8" in head
    assert b"transfer-encoding: chunked" in head
    assert b"content-encoding" not in head  # SSE is never compressed
    assert b"x-ratelimit-limit-requests" in head
    assert rest.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    assert b'"usage":null' in rest


def test_chat_stream_without_usage(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, extra_headers={"x-fake-chunks": "200"}
        )
    )
    assert len(chunks) == 202  # role + 200 deltas + finish
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    (row,) = fake_openai.ledger.rows()
    assert row.output_tokens == 200 and not row.usage_reported


def test_chat_n_choices_and_max_tokens(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=CHAT, n=3, max_completion_tokens=5)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert all(c.finish_reason == "length" for c in completion.choices)
    assert completion.usage is not None and completion.usage.completion_tokens == 15
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, n=2, stream=True, stream_options={"include_usage": True}
        )
    )
    finishes = [c.choices[0].index for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [0, 1]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16


def test_reasoning_model_tokens(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="o4-mini", messages=CHAT, reasoning_effort="high")
    assert completion.model == "o4-mini-2025-04-16"
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 256
    assert completion.usage.completion_tokens == 256 + 8
    assert fake_openai.ledger.rows()[0].reasoning_tokens == 256


def test_audio_model_tokens(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-audio-preview",
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
        messages=[
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "AAAA" * 500, "format": "wav"}}],
            }
        ],
    )
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert usage.prompt_tokens_details.audio_tokens == 12
    assert usage.completion_tokens_details.audio_tokens == 32
    assert completion.choices[0].message.audio is not None


def test_responses_json(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(model="gpt-5", input="hi", service_tier="priority")
    response = raw.parse()
    assert response.id.startswith("resp_")
    assert response.model == "gpt-5-2025-08-07"
    assert response.status == "completed"
    assert response.service_tier == "priority"
    assert [o.type for o in response.output] == ["reasoning", "message"]
    assert response.output_text == "The quick brown fox jumps over the lazy"
    assert response.usage is not None
    assert response.usage.output_tokens == 64 + 8
    assert response.usage.output_tokens_details.reasoning_tokens == 64
    assert "x-ratelimit-limit-tokens" in raw.headers
    (row,) = fake_openai.ledger.rows()
    assert (row.endpoint, row.service_tier, row.reasoning_tokens) == ("responses", "priority", 64)


def test_responses_stream(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with client.responses.with_streaming_response.create(model="gpt-4o", input="hi", stream=True) as raw:
        assert not any(h.startswith("x-ratelimit") for h in raw.headers)
        events = list(raw.parse())
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.service_tier == "auto"  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert final.service_tier == "default" and final.usage is not None and final.usage.output_tokens == 8
    assert fake_openai.ledger.rows()[0].usage_reported


def test_responses_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o", input="hi", max_output_tokens=3)
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    assert response.usage is not None and response.usage.output_tokens == 3
    events = list(client.responses.create(model="gpt-5", input="hi", max_output_tokens=16, stream=True))
    assert events[-1].type == "response.incomplete"


def test_embeddings_float_and_base64(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["abcd", "efgh"], encoding_format="float"
    )
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 1536
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 2
    again = client.embeddings.create(model="text-embedding-3-small", input=["abcd"], encoding_format="float")
    assert again.data[0].embedding == floats.data[0].embedding  # deterministic
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-large", input="abcd", encoding_format="base64"
    )
    blob = json.loads(raw.content)["data"][0]["embedding"]
    assert isinstance(blob, str) and len(base64.b64decode(blob)) == 3072 * 4
    decoded = struct.unpack("<3072f", base64.b64decode(blob))
    assert any(decoded)
    assert [r.endpoint for r in fake_openai.ledger.rows()] == ["embeddings"] * 3


def test_legacy_completions(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "The quick brown fox jumps over the lazy"
    assert completion.usage is not None and completion.usage.prompt_tokens == 5
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="x", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8


def test_other_endpoints(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    moderation = client.moderations.create(input=["one", "two"])
    assert moderation.model == "omni-moderation-2024-09-26" and len(moderation.results) == 2
    images = client.images.generate(model="dall-e-3", prompt="a cat", response_format="b64_json", n=1)
    assert images.data is not None and base64.b64decode(images.data[0].b64_json or "")[:4] == b"\x89PNG"
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello world")
    assert speech.content[:2] == b"\xff\xf3"
    rows = {r.endpoint: r for r in fake_openai.ledger.rows()}
    assert rows["moderations"].input_tokens == 2
    assert rows["images.generations"].images == 1
    assert rows["images.generations"].extra["size"] == "1024x1024"
    assert rows["audio.speech"].characters == 11


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids
    assert client.models.retrieve("gpt-4o-mini").owned_by == "system"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-4-foo")
    assert info.value.code == "model_not_found"
    assert "`gpt-4-foo`" in info.value.message


def test_auth_errors(fake_openai: FakeOpenAI) -> None:
    bad = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-wrong-key-123456789", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert info.value.code == "invalid_api_key"
    assert info.value.type == "invalid_request_error"
    assert "sk-wrong**********6789" in info.value.message
    (row,) = fake_openai.ledger.rows()
    assert (row.status, row.error_code, row.billed) == (401, "invalid_api_key", False)
    response = raw_http(fake_openai, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 401")


def test_extra_keys_and_project_header(fake_openai: FakeOpenAI) -> None:
    fake_openai.projects["sk-second-key-abcdefgh"] = "proj_second"
    with openai.OpenAI(
        base_url=fake_openai.base_url,
        api_key="sk-second-key-abcdefgh",
        project="proj_override",
        max_retries=0,
    ) as other:
        raw = other.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
    assert raw.headers["openai-project"] == "proj_override"
    assert fake_openai.ledger.rows()[0].project_id == "proj_override"
    fake_openai.reset()
    assert "sk-second-key-abcdefgh" not in fake_openai.projects


def test_request_errors(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=CHAT)
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "x" * 70_000}]
        )
    assert too_long.value.code == "context_length_exceeded" and too_long.value.param == "messages"
    response = raw_http(
        fake_openai,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + fake_openai.api_key.encode()
        + b"\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{oops",
    )
    assert response.startswith(b"HTTP/1.1 400")
    assert [r.error_code for r in fake_openai.ledger.rows()] == [
        "model_not_found",
        "context_length_exceeded",
        "invalid_request_error",  # code null: the ledger records the type
    ]


def test_gzip_only_when_accepted(fake_openai: FakeOpenAI) -> None:
    plain = post(fake_openai, "/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT})
    head, _, body = plain.partition(b"\r\n\r\n")
    assert b"content-encoding" not in head and json.loads(body)["object"] == "chat.completion"
    zipped = post(
        fake_openai,
        "/v1/chat/completions",
        {"model": "gpt-4o", "messages": CHAT},
        "Accept-Encoding: gzip\r\n",
    )
    head, _, body = zipped.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head
    assert json.loads(gzip.decompress(body))["object"] == "chat.completion"


def test_azure_client(fake_openai: FakeOpenAI) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=fake_openai.root_url,
        api_key=fake_openai.azure_api_key,
        api_version="2024-10-21",
        max_retries=0,
    ) as azure:
        raw = azure.chat.completions.with_raw_response.create(model="my-gpt4o", messages=CHAT)
        completion = raw.parse()
        chunks = list(azure.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True))
        response = azure.responses.create(model="gpt-4o", input="hi")
        embedding = azure.embeddings.create(model="text-embedding-3-small", input="abc")
    assert completion.choices[0].message.content
    headers = raw.headers
    assert len(headers["x-request-id"]) == 36 and "-" in headers["x-request-id"]
    assert "apim-request-id" in headers and "x-ms-region" in headers
    assert "x-ratelimit-remaining-requests" in headers and "x-ratelimit-limit-requests" not in headers
    assert chunks[0].choices == [] and chunks[0].id == ""
    assert response.output_text and embedding.data
    paths = [r.path for r in fake_openai.requests]
    assert paths[0] == "/openai/deployments/my-gpt4o/chat/completions"
    assert "/openai/responses" in paths
    assert all("api-version=2024-10-21" in r.query for r in fake_openai.requests)
    assert all(r.headers["api-key"] == "<redacted>" for r in fake_openai.requests)
    row = fake_openai.ledger.rows()[0]
    assert row.extra["deployment"] == "my-gpt4o" and row.request_id == headers["x-request-id"]


def test_azure_requires_api_version_and_key(fake_openai: FakeOpenAI) -> None:
    path = "/openai/deployments/d/chat/completions"
    missing = raw_http(
        fake_openai,
        f"POST {path} HTTP/1.1\r\nHost: x\r\napi-key: {fake_openai.azure_api_key}\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}".encode(),
    )
    assert missing.startswith(b"HTTP/1.1 400")
    wrong = raw_http(
        fake_openai,
        f"POST {path}?api-version=2024-10-21 HTTP/1.1\r\nHost: x\r\napi-key: nope\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}".encode(),
    )
    assert wrong.startswith(b"HTTP/1.1 401")


def test_organization_routes_go_to_usage_api(fake_openai: FakeOpenAI) -> None:
    response = raw_http(
        fake_openai,
        f"GET /v1/organization/usage/completions?start_time=0 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {fake_openai.admin_key}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert b"x-request-id: req_" in response.partition(b"\r\n\r\n")[0]
    assert fake_openai.requests[-1].path == "/v1/organization/usage/completions"
    assert len(fake_openai.ledger) == 0  # not inference


def test_keep_alive_reuses_the_connection(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    with client.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True) as stream:
        list(stream)
    client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert len(fake_openai.ledger) == 5


def test_body_size_limit(fake_openai: FakeOpenAI) -> None:
    response = raw_http(
        fake_openai,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
    )
    assert response.startswith(b"HTTP/1.1 413")


def test_async_client_and_concurrency(fake_openai: FakeOpenAI) -> None:
    import asyncio

    async def main() -> list[str]:
        async with openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key) as client:

            async def one(i: int) -> str:
                if i % 2:
                    stream = await client.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True)
                    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
                completion = await client.chat.completions.create(model="gpt-4o", messages=CHAT)
                return completion.choices[0].message.content or ""

            return await asyncio.gather(*(one(i) for i in range(24)))

    texts = asyncio.run(main())
    assert set(texts) == {"The quick brown fox jumps over the lazy"}
    assert len(fake_openai.ledger) == 24
