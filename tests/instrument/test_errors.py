"""Errors and retries: one span per HTTP attempt, OpenAI error codes, rate-limit headers, attempt numbers."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from spendscope import semconv as sc

from .conftest import Spans

MESSAGES = [{"role": "user", "content": "hi"}]


def _create(client: openai.OpenAI, fault: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-fault": fault}, **kwargs
    )


def test_429_retried_then_succeeds(client: openai.OpenAI, fake_openai: Any, spans: Spans) -> None:
    _create(client, "status=429;code=rate_limit_exceeded;type=tokens;retry_after_ms=20;retry_after=1;times=2")
    attempts = spans.attrs()
    rows = fake_openai.ledger.rows()
    assert [a[sc.ATTEMPT] for a in attempts] == [0, 1, 2] == [r.retry_count for r in rows]
    assert [a[sc.HTTP_RESPONSE_STATUS_CODE] for a in attempts] == [429, 429, 200]
    assert [a.get(sc.ERROR_TYPE) for a in attempts] == ["rate_limit_exceeded", "rate_limit_exceeded", None]
    assert attempts[0][sc.RETRY_AFTER_S] == pytest.approx(0.02)  # retry-after-ms wins over retry-after
    assert (
        attempts[0][sc.RATELIMIT_REMAINING_TOKENS] == 0 or attempts[0][sc.RATELIMIT_REMAINING_REQUESTS] == 0
    )
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attempts[0]
    statuses = [span.status.status_code for span in spans.all()]
    assert statuses == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert attempts[2][sc.GEN_AI_USAGE_INPUT_TOKENS] == rows[2].input_tokens


def test_insufficient_quota_not_retried(client: openai.OpenAI, spans: Spans) -> None:
    with pytest.raises(openai.RateLimitError):
        _create(client, "status=429;code=insufficient_quota;type=insufficient_quota;should_retry=false")
    span = spans.one()
    assert span[sc.ERROR_TYPE] == "insufficient_quota"


@pytest.mark.parametrize(
    ("fault", "exc", "code"),
    [
        ("status=400;code=context_length_exceeded", openai.BadRequestError, "context_length_exceeded"),
        ("status=404;code=model_not_found", openai.NotFoundError, "model_not_found"),
        ("status=401;code=invalid_api_key", openai.AuthenticationError, "invalid_api_key"),
    ],
)
def test_client_errors(
    client: openai.OpenAI, spans: Spans, fault: str, exc: type[Exception], code: str
) -> None:
    with pytest.raises(exc):
        _create(client, fault)
    span = spans.one()
    assert span[sc.ERROR_TYPE] == code
    assert span[sc.HTTP_RESPONSE_STATUS_CODE] == int(fault.split(";", maxsplit=1)[0].split("=")[1])


def test_server_errors_every_attempt_seen(client: openai.OpenAI, spans: Spans) -> None:
    with pytest.raises(openai.InternalServerError):
        _create(client, "status=502;body=html", timeout=5)
    attempts = spans.attrs()
    assert [a[sc.ATTEMPT] for a in attempts] == [0, 1, 2]
    assert all(a[sc.ERROR_TYPE] == "502" for a in attempts)


def test_transport_timeout(fake_openai: Any, spans: Spans) -> None:
    client = openai.OpenAI(
        base_url=fake_openai.base_url, api_key=fake_openai.api_key, max_retries=1, timeout=0.3
    )
    with pytest.raises(openai.APITimeoutError):
        _create(client, "ttfb_ms=1500")
    attempts = spans.attrs()
    assert len(attempts) == 2
    assert all(a[sc.ERROR_TYPE] in {"ReadTimeout", "TimeoutException"} for a in attempts)
    assert all(sc.HTTP_RESPONSE_STATUS_CODE not in a for a in attempts)
