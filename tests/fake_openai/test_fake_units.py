"""Pure parts of the fake OpenAI server: durations, fault specs, token arithmetic, routes; and its CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from spendscope.fake_openai import FakeOpenAI, tokens
from spendscope.fake_openai.faults import Fault, FaultError, FaultRules, parse_fault
from spendscope.fake_openai.ratelimit import RateLimiter, format_duration
from spendscope.fake_openai.routes import resolve

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.0004, "0s"), (0.009, "9ms"), (0.12, "120ms"), (1, "1s"), (1.5, "1.5s"), (8.64, "8.64s"),
     (360, "6m0s"), (383.456, "6m23.456s"), (9000, "2h30m0s")],
)  # fmt: skip
def test_go_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_token_bucket_refills_with_the_clock() -> None:
    limiter = RateLimiter()
    limiter.set_limits("m", 60, 6000)
    first = limiter.take("p", "m", 100, now=1000.0)
    assert (first.remaining_requests, first.remaining_tokens) == (59, 5900)
    assert (first.reset_requests, first.reset_tokens) == ("1s", "1s")
    later = limiter.take("p", "m", 100, now=1030.0)  # half a minute refills everything
    assert (later.remaining_requests, later.remaining_tokens) == (59, 5900)
    other = limiter.take("other-project", "m", 0, now=1030.0)
    assert other.remaining_requests == 59


def test_fault_spec_parsing() -> None:
    fault = parse_fault(" status=429 ; code=rate_limit_exceeded;retry_after_ms=50;times=2;crlf;truncate ")
    assert fault == Fault(
        status=429, code="rate_limit_exceeded", retry_after_ms="50", times=2, crlf=True, truncate=-1
    )
    assert parse_fault("malformed=4;delay_ms=999999").malformed == 4
    assert parse_fault("code=server_error").is_error
    assert not parse_fault("code=rate_limit_exceeded;flat_error").is_error
    assert parse_fault("delay_ms=999999").ttfb_ms == 120_000  # bounded
    for bad in ("bogus=1", "status=abc", "split=0"):
        with pytest.raises(FaultError):
            parse_fault(bad)


def test_header_times_counts_by_retry_header() -> None:
    rules = FaultRules()
    spec = "status=500;times=2"
    assert [rules.from_header(spec, n) is not None for n in (0, 1, 2)] == [True, True, False]
    assert [rules.from_header(spec, None) is not None for _ in range(3)] == [True, True, False]


def test_rule_validation() -> None:
    rules = FaultRules()
    with pytest.raises(FaultError):
        rules.add({"match": {"nth": 0}, "action": {"status": 500}})
    with pytest.raises(FaultError):
        rules.add({"match": {}, "action": {"nope": 1}})


def test_token_arithmetic() -> None:
    assert tokens.count_text("") == 0
    assert tokens.count_text("abcd") == 1
    assert tokens.count_text("abcde") == 2
    assert tokens.count_text("é") == 1  # 2 utf-8 bytes
    prompt, audio = tokens.count_chat_input([{"role": "user", "content": "hello there"}])
    assert (prompt, audio) == (3 + 3 + 3, 0)
    parts = [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert tokens.count_chat_input([{"role": "user", "content": parts}])[0] == 3 + 3 + 1 + 85
    assert tokens.count_embedding_input(["ab", "abcdefgh"]) == [1, 2]
    assert tokens.count_embedding_input([1, 2, 3]) == [3]
    assert tokens.count_prompt(["abcd", "abcd"]) == 2
    assert tokens.snapshot_for("gpt-4.1") == "gpt-4.1-2025-04-14"
    assert tokens.snapshot_for("my-custom-model") == "my-custom-model"
    assert tokens.is_reasoning_model("gpt-5-mini") and tokens.is_reasoning_model("o3")
    assert not tokens.is_reasoning_model("gpt-5-chat-latest") and not tokens.is_reasoning_model("gpt-4o")
    assert tokens.reasoning_tokens_for("o3", "low") == 16
    assert tokens.reasoning_tokens_for("gpt-4o", "high") == 0
    assert tokens.reply_words(3) == ("The", " quick", " brown")


def test_routes() -> None:
    assert resolve("/v1/chat/completions").endpoint == "chat.completions"
    azure = resolve("/openai/deployments/dep-1/embeddings")
    assert (azure.endpoint, azure.deployment, azure.azure_key_auth) == ("embeddings", "dep-1", True)
    assert resolve("/openai/v1/responses").azure
    assert resolve("/v1/organization/costs").kind == "organization"
    assert resolve("/v1/models/gpt-4o").op == "gpt-4o"
    assert resolve("/v2/nothing").kind == "unknown"
    assert resolve("/openai/deployments/dep/files").kind == "unknown"


def test_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeOpenAI(host="0.0.0.0")


def test_start_stop_is_prompt_with_idle_keep_alive_connections() -> None:
    fake = FakeOpenAI().start()
    request = urllib.request.Request(
        f"{fake.base_url}/models", headers={"Authorization": f"Bearer {fake.api_key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    fake.stop()  # idempotent


def test_module_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "spendscope.fake_openai", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(5))
        assert lines["base_url"].startswith("http://127.0.0.1:") and lines["base_url"].endswith("/v1")
        request = urllib.request.Request(
            f"{lines['base_url']}/models", headers={"Authorization": f"Bearer {lines['api_key']}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
