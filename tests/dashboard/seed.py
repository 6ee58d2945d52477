"""Known spans for the dashboard tests, sent with the real OpenTelemetry SDK and OTLP exporter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from spendscope import semconv as sc


@dataclass
class Call:
    minutes_ago: int
    model: str
    service: str
    project: str = "proj_finance"
    user: str | None = None
    feature: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: int = 200
    error_type: str | None = None
    duration_s: float = 0.5
    ttfc_s: float | None = None
    input_tokens: int | None = 1000
    cached: int | None = 0
    output_tokens: int | None = 200
    batch: bool = False
    limit_requests: int | None = 500
    remaining_requests: int | None = 499
    limit_tokens: int | None = 200_000
    remaining_tokens: int | None = 190_000


def calls() -> list[Call]:
    out: list[Call] = []
    for i in range(6):
        out.append(
            Call(
                10 + i,
                "gpt-4o-mini",
                "checkout",
                user="u-1",
                feature="search",
                tags={"team": "blue"},
                duration_s=0.2 + i * 0.1,
                ttfc_s=0.05 + i * 0.01,
                cached=400,
                remaining_requests=490 - i,
            )
        )
    for i in range(3):
        out.append(
            Call(
                30 + i,
                "gpt-4o",
                "support",
                project="proj_support",
                user="u-2",
                feature="chat",
                duration_s=1.0 + i,
                input_tokens=3000,
                output_tokens=500,
                batch=i == 0,
            )
        )
    # Failures: two 429s and one 500 (no usage: they cost 0, they are not unpriced).
    out.append(
        Call(
            40,
            "gpt-4o-mini",
            "checkout",
            status=429,
            error_type="rate_limit_exceeded",
            input_tokens=None,
            cached=None,
            output_tokens=None,
            remaining_requests=0,
        )
    )
    out.append(
        Call(
            41,
            "gpt-4o-mini",
            "checkout",
            status=429,
            error_type="rate_limit_exceeded",
            input_tokens=None,
            cached=None,
            output_tokens=None,
            remaining_requests=0,
        )
    )
    out.append(
        Call(
            42,
            "gpt-4o",
            "support",
            project="proj_support",
            status=500,
            error_type="server_error",
            input_tokens=None,
            cached=None,
            output_tokens=None,
        )
    )
    # A model with no price: its calls are unpriced (cost NULL), never $0.
    out.append(Call(50, "mystery-model-9", "labs", project="proj_labs", input_tokens=100, output_tokens=10))
    out.append(Call(51, "mystery-model-9", "labs", project="proj_labs", input_tokens=100, output_tokens=10))
    return out


def _attrs(c: Call) -> dict[str, Any]:
    a: dict[str, Any] = {
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: c.model,
        sc.GEN_AI_RESPONSE_MODEL: c.model,
        sc.HTTP_RESPONSE_STATUS_CODE: c.status,
        sc.SERVER_ADDRESS: "api.openai.com",
        sc.OPENAI_PROJECT: c.project,
        sc.ATTEMPT: 0,
    }
    optional = {
        sc.GEN_AI_USAGE_INPUT_TOKENS: c.input_tokens,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: c.cached,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: c.output_tokens,
        sc.GEN_AI_TIME_TO_FIRST_CHUNK: c.ttfc_s,
        sc.ERROR_TYPE: c.error_type,
        sc.USER: c.user,
        sc.FEATURE: c.feature,
        sc.RATELIMIT_LIMIT_REQUESTS: c.limit_requests,
        sc.RATELIMIT_REMAINING_REQUESTS: c.remaining_requests,
        sc.RATELIMIT_LIMIT_TOKENS: c.limit_tokens,
        sc.RATELIMIT_REMAINING_TOKENS: c.remaining_tokens,
    }
    a.update({k: v for k, v in optional.items() if v is not None})
    if c.ttfc_s is not None:
        a[sc.GEN_AI_REQUEST_STREAM] = True
        a[sc.STREAM_COMPLETED] = True
    if c.batch:
        a[sc.BATCH] = True
    for k, v in c.tags.items():
        a[sc.TAG_PREFIX + k] = v
    return a


def send(endpoint: str, token: str | None, now: datetime | None = None) -> list[Call]:
    """Send every known call as one span; return them. Blocks until each export is acknowledged."""
    now = now or datetime.now(UTC)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    sent = calls()
    by_service: dict[str, list[Call]] = {}
    for c in sent:
        by_service.setdefault(c.service, []).append(c)
    for service, group in by_service.items():
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=headers, timeout=10)
        provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("tests.dashboard")
        for c in group:
            start = now - timedelta(minutes=c.minutes_ago)
            start_ns = int(start.timestamp() * 1e9)
            span = tracer.start_span(
                f"chat {c.model}", kind=SpanKind.CLIENT, attributes=_attrs(c), start_time=start_ns
            )
            if c.status >= 400:
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=start_ns + int(c.duration_s * 1e9))
        provider.shutdown()
    return sent
