"""Fault injection in the fake OpenAI server, checked against the SDK behaviours of openai-wire.md."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from spendscope.fake_openai import FakeOpenAI

CHAT = [{"role": "user", "content": "hello there"}]
OPENAI3 = int(openai.__version__.split(".")[0]) >= 3


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=2) as c:
        yield c


def fault(spec: str) -> dict[str, str]:
    return {"x-fake-fault": spec}


def control(fake: FakeOpenAI, method: str, op: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{fake.root_url}/__fake{op}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def stream_text(stream: Any) -> tuple[str, Any]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks[-1].usage


def test_rate_limit_is_retried_then_raised(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    spec = "status=429;code=rate_limit_exceeded;type=requests;retry_after_ms=50"
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=CHAT, extra_headers=fault(spec))
    assert time.monotonic() - started < 5
    assert info.value.code == "rate_limit_exceeded" and info.value.type == "requests"
    assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert info.value.response.headers["retry-after-ms"] == "50"
    attempts = [r.header("x-stainless-retry-count") for r in fake_openai.requests]
    assert attempts == ["0", "1", "2"]
    rows = fake_openai.ledger.rows()
    assert [(r.status, r.retry_count, r.error_code, r.billed) for r in rows] == [
        (429, n, "rate_limit_exceeded", False) for n in range(3)
    ]


def test_times_lets_the_retry_succeed(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    spec = "status=429;code=rate_limit_exceeded;retry_after_ms=10;times=2"
    completion = client.chat.completions.create(model="gpt-4o", messages=CHAT, extra_headers=fault(spec))
    assert completion.choices[0].message.content
    assert [(r.status, r.retry_count, r.billed) for r in fake_openai.ledger.rows()] == [
        (429, 0, False),
        (429, 1, False),
        (200, 2, True),
    ]


def test_insufficient_quota_with_should_retry_false(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("code=insufficient_quota;should_retry=false")
        )
    assert info.value.code == "insufficient_quota" and info.value.type == "insufficient_quota"
    assert "retry-after" not in info.value.response.headers
    assert len(fake_openai.ledger) == 1


def test_retry_after_beyond_two_minutes_is_not_retried(
    fake_openai: FakeOpenAI, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("code=rate_limit_exceeded;retry_after=200")
        )
    assert len(fake_openai.ledger) == 1


@pytest.mark.parametrize(
    ("spec", "content_type", "body_start"),
    [
        ("status=500", "application/json", b'{"error":{"message":"The server had an error'),
        ("status=502", "text/html", b"<html>"),
        ("status=500;body=empty", "application/json", b""),
        (
            "status=503;should_retry=false",
            "application/json",
            b'{"error":{"message":"The server is overloaded',
        ),
    ],
)
def test_server_errors(fake_openai: FakeOpenAI, spec: str, content_type: str, body_start: bytes) -> None:
    with (
        openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0) as c,
        pytest.raises(openai.InternalServerError) as info,
    ):
        c.chat.completions.create(model="gpt-4o", messages=CHAT, extra_headers=fault(spec))
    response = info.value.response
    assert response.headers["content-type"] == content_type
    assert response.content.startswith(body_start)
    if "should_retry" in spec:
        assert response.headers["x-should-retry"] == "false"
    (row,) = fake_openai.ledger.rows()
    assert row.status == int(spec[7:10]) and not row.billed


def test_should_retry_false_stops_the_sdk(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("status=503;should_retry=false")
        )
    assert len(fake_openai.ledger) == 1


def test_client_errors_from_faults(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("code=context_length_exceeded")
        )
    assert info.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, extra_headers=fault("code=model_not_found")
        )


def test_bad_fault_spec_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=CHAT, extra_headers=fault("explode=1"))
    assert "explode" in info.value.message


def test_truncated_stream(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    # openai 3 wraps the transport error; openai 2 lets httpx.RemoteProtocolError escape (§5.5).
    expected: type[BaseException]
    if OPENAI3:
        expected = openai.APIConnectionError
    else:
        import httpx

        expected = httpx.RemoteProtocolError
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=CHAT,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=fault("truncate=3"),
    )
    seen = []
    with pytest.raises(expected):
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 3
    (row,) = fake_openai.ledger.rows()
    assert row.billed and not row.usage_reported  # generated and billed, never delivered


def test_malformed_sse_json(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("malformed")
    )
    with pytest.raises(json.JSONDecodeError):
        list(stream)


def test_in_stream_error_chat(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("stream_error=2")
    )
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert not isinstance(info.value, openai.APIStatusError)
    assert "server had an error" in info.value.message
    (row,) = fake_openai.ledger.rows()
    assert (row.status, row.error_code, row.billed) == (200, "server_error", False)


def test_in_stream_error_responses_nested_and_flat(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        list(
            client.responses.create(
                model="gpt-4o",
                input="x",
                stream=True,
                extra_headers=fault("stream_error=3;code=rate_limit_exceeded"),
            )
        )
    events = list(
        client.responses.create(model="gpt-4o", input="x", stream=True, extra_headers=fault("flat_error"))
    )
    assert events[-1].type == "error"
    assert events[-1].code == "server_error"  # type: ignore[union-attr]
    assert [r.error_code for r in fake_openai.ledger.rows()] == ["rate_limit_exceeded", "server_error"]


def test_missing_done_and_missing_usage(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    options: Any = {"include_usage": True}
    text, usage = stream_text(
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, stream_options=options, extra_headers=fault("no_done")
        )
    )
    assert text and usage is not None
    text, usage = stream_text(
        client.chat.completions.create(
            model="gpt-4o",
            messages=CHAT,
            stream=True,
            stream_options=options,
            extra_headers=fault("no_usage"),
        )
    )
    assert text and usage is None
    assert [r.usage_reported for r in fake_openai.ledger.rows()] == [True, False]


@pytest.mark.parametrize(
    "spec", ["comments", "crlf", "split=7", "split=1;crlf", "multiline", "comments;crlf;split=13"]
)
def test_decoder_robustness_faults_change_nothing(client: openai.OpenAI, spec: str) -> None:
    options: Any = {"include_usage": True}
    baseline = stream_text(
        client.chat.completions.create(model="gpt-4o", messages=CHAT, stream=True, stream_options=options)
    )
    faulted = stream_text(
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, stream_options=options, extra_headers=fault(spec)
        )
    )
    assert faulted == baseline
    events = list(client.responses.create(model="gpt-4o", input="x", stream=True, extra_headers=fault(spec)))
    assert events[-1].type == "response.completed"


def test_legacy_2024_stream(client: openai.OpenAI) -> None:
    options: Any = {"include_usage": True}
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, stream_options=options, extra_headers=fault("legacy")
        )
    )
    assert all(c.service_tier is None and getattr(c, "obfuscation", None) is None for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens_details is None


def test_truncated_json_body(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="gpt-4o", messages=CHAT, extra_headers=fault("truncate"))
    assert len(fake_openai.ledger) == 1  # not retried


def test_slow_first_byte_times_out(fake_openai: FakeOpenAI) -> None:
    with (
        openai.OpenAI(
            base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0, timeout=0.2
        ) as c,
        pytest.raises(openai.APITimeoutError),
    ):
        c.chat.completions.create(model="gpt-4o", messages=CHAT, extra_headers=fault("ttfb_ms=700"))
    # The server still answers (and records) it later, but a reset in between means a new test:
    # the late row must not land in that test's ledger.
    fake_openai.reset()
    time.sleep(0.9)
    assert fake_openai.ledger.rows() == []


def test_stall_and_chunk_delay(fake_openai: FakeOpenAI) -> None:
    with openai.OpenAI(
        base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0, timeout=0.3
    ) as c:
        stream = c.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("stall_after=3;stall_ms=1500")
        )
        seen = 0
        with pytest.raises(openai.APITimeoutError if OPENAI3 else Exception):
            for _ in stream:
                seen += 1
        assert seen == 3
        started = time.monotonic()
        text, _ = stream_text(
            c.chat.completions.create(
                model="gpt-4o", messages=CHAT, stream=True, extra_headers=fault("chunk_delay_ms=20")
            )
        )
        assert text and time.monotonic() - started >= 10 * 0.02


def test_rules_match_path_model_nth_times(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_openai.inject(
        {
            "match": {"path": "/chat/completions", "model": "gpt-4o-mini", "nth": 2, "times": 1},
            "action": {"status": 500, "should_retry": "false"},
        }
    )
    client.chat.completions.create(model="gpt-4o", messages=CHAT)  # other model: not counted
    client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # 1st match
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # 2nd: fires
    client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # 3rd: spent
    assert [r.status for r in fake_openai.ledger.rows()] == [200, 200, 500, 200]


def test_control_plane(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    assert control(
        fake_openai,
        "POST",
        "/faults",
        {
            "match": {"path": "/v1/embeddings", "times": 1},
            "action": {"code": "rate_limit_exceeded", "retry_after_ms": 5},
        },
    )["ok"]
    assert control(fake_openai, "GET", "/faults")["rows"][0]["match"]["path"] == "/v1/embeddings"
    embedding = client.embeddings.create(model="text-embedding-3-small", input="abc")
    assert embedding.data
    ledger = control(fake_openai, "GET", "/ledger")["rows"]
    assert [(r["status"], r["retry_count"]) for r in ledger] == [(429, 0), (200, 1)]
    recorded = control(fake_openai, "GET", "/requests")["rows"]
    assert recorded[0]["path"] == "/v1/embeddings"
    assert recorded[0]["headers"]["authorization"] == "<redacted>"
    assert control(fake_openai, "POST", "/clock", {"set": 1_700_000_000})["now"] == 1_700_000_000
    assert control(fake_openai, "POST", "/clock", {"advance": 60})["now"] == 1_700_000_060
    client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert fake_openai.ledger.rows()[-1].ts == 1_700_000_060
    assert control(fake_openai, "POST", "/reset")["ok"]
    assert len(fake_openai.ledger) == 0 and control(fake_openai, "GET", "/faults")["rows"] == []
    assert abs(fake_openai.now() - time.time()) < 5


def test_clock_drives_created_and_ledger(fake_openai: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_openai.set_clock(1_730_419_200)
    fake_openai.advance_clock(30)
    completion = client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert completion.created == 1_730_419_230
    assert fake_openai.ledger.rows()[0].ts == 1_730_419_230


def test_enforced_rate_limits(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_clock(1_800_000_000)
    fake_openai.set_rate_limits("gpt-4o", requests_per_min=2, tokens_per_min=1_000_000, enforce=True)
    with openai.OpenAI(base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=0) as c:
        first = c.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-reset-requests"] == "30s"
        c.chat.completions.create(model="gpt-4o", messages=CHAT)
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="gpt-4o", messages=CHAT)
        assert info.value.type == "requests"
        assert info.value.response.headers["retry-after-ms"] == "30000"
        fake_openai.advance_clock(30)
        c.chat.completions.create(model="gpt-4o", messages=CHAT)


def test_header_times_without_sdk_retry_header(fake_openai: FakeOpenAI) -> None:
    request = urllib.request.Request(
        f"{fake_openai.base_url}/models",
        headers={"Authorization": f"Bearer {fake_openai.api_key}", "x-fake-fault": "status=503;times=1"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 503
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
