"""Property-based fuzzing of a real collector: random OTLP bodies and random query parameters.

The invariants: ``/v1/traces`` answers only 200, 400, 413, 415, 429 or 503; the collector stays
healthy; every query endpoint still answers 200 over whatever was stored; no query parameter of any
declared endpoint makes it answer 5xx. Then a restart: the stored data is intact and every endpoint
still answers.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spendscope.collector import components
from tests.collector.helpers import CollectorProcess, make_request, span_dict
from tests.collector.test_hostile import GET_ENDPOINTS

pytestmark = [pytest.mark.server, pytest.mark.slow]

_INGEST_STATUSES = {200, 400, 413, 415, 429, 503}
_KEYS = st.sampled_from(
    [
        "gen_ai.provider.name",
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.response.time_to_first_chunk",
        "http.response.status_code",
        "spendscope.attempt",
        "spendscope.user",
        "spendscope.feature",
        "spendscope.openai.project",
        "spendscope.ratelimit.remaining_tokens",
        "spendscope.ratelimit.limit_tokens",
        "spendscope.ratelimit.reset_tokens_s",
        "spendscope.retry_after_s",
        "spendscope.tag.team",
        "spendscope.tag.",
        "service.name",
        "",
        "x" * 300,
    ]
)
_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "gpt-4o-mini", "openai", "chat", "\x00", "é" * 2000, "𝔘" * 1100, "x" * 4097]),
)
_NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 2**31, 2**32, 2**62 - 1, -1, 1e308, -0.0, 5e-324]),
)
_VALUES = st.one_of(_TEXT, _NUMBERS, st.booleans(), st.binary(max_size=20), st.lists(_TEXT, max_size=3))
_GENAI = {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    c = CollectorProcess(tmp_path_factory.mktemp("fuzz") / "f.duckdb")
    c.start()
    yield c
    c.terminate()


def _protobuf(spans: list[dict[str, Any]], times: list[tuple[int, int]]) -> bytes:
    built = []
    for attrs, (start, dur) in zip(spans, times, strict=False):
        s = span_dict({**(_GENAI if len(attrs) % 2 else {}), **attrs}, start_ns=start, duration_ns=dur)
        built.append(s)
    try:
        return make_request(built, "fuzz").SerializeToString()
    except (ValueError, TypeError, OverflowError):  # protobuf refuses some values client-side
        return b""


_TIMES = st.tuples(
    st.one_of(st.just(time.time_ns()), st.integers(min_value=0, max_value=2**64 - 1)),
    st.integers(min_value=0, max_value=2**40),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spans=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=8), min_size=1, max_size=5),
    times=st.lists(_TIMES, min_size=5, max_size=5),
)
def test_fuzzed_protobuf_bodies(collector: CollectorProcess, spans: list[dict[str, Any]], times: Any) -> None:
    body = _protobuf(spans, times)
    if not body:
        return
    resp = collector.post_otlp(body)
    assert resp.status_code in _INGEST_STATUSES, resp.text


def _any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v if math.isfinite(v) else str(v)}
    if isinstance(v, bytes):
        return {"bytesValue": v.hex()}  # not base64: refused for that span
    if isinstance(v, list):
        return {"arrayValue": {"values": [_any_value(x) for x in v]}}
    return {"stringValue": v}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spans=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=8), min_size=1, max_size=5),
    start=st.one_of(st.integers(min_value=0, max_value=10**25).map(str), st.text(max_size=5), st.just(None)),
    surrogate=st.booleans(),
)
def test_fuzzed_json_bodies(
    collector: CollectorProcess, spans: list[dict[str, Any]], start: Any, surrogate: bool
) -> None:
    now = time.time_ns()
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "fuzz-json"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": os.urandom(16).hex(),
                                "spanId": os.urandom(8).hex(),
                                "name": "chat\ud800" if surrogate else "chat",
                                "startTimeUnixNano": start if start is not None else str(now),
                                "endTimeUnixNano": str(now + 10**8),
                                "attributes": [
                                    {"key": k, "value": _any_value(v)}
                                    for k, v in {**(_GENAI if i % 2 else {}), **attrs}.items()
                                ],
                            }
                            for i, attrs in enumerate(spans)
                        ]
                    }
                ],
            }
        ]
    }
    body = json.dumps(doc, allow_nan=True).encode()
    resp = collector.post_otlp(body, content_type="application/json")
    assert resp.status_code in _INGEST_STATUSES, resp.text


def _get_params() -> list[tuple[str, list[str]]]:
    """Every GET endpoint without path parameters, with the names of its declared parameters."""
    out = []
    for part in components.load():
        for e in part.endpoints:
            if e.method == "GET" and "{" not in e.path:
                out.append((e.path, sorted(e.params.model_fields)))
    return out


_ENDPOINTS = _get_params()
_PARAM_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e400",
            "NaN",
            "²",
            "9" * 5000,
            "0001-01-01",
            "9999-12-31T23:59:59-14:00",
            "2026-03-01T00:00:00Z",
            "2026-02-30",
            "day,day",
            "model,day,service",
            "tag",
            "true",
            "maybe",
            ",,,",
            "x" * 5000,
        ]
    ),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    endpoint=st.sampled_from(_ENDPOINTS),
    data=st.data(),
)
def test_fuzzed_query_parameters_never_5xx(collector: CollectorProcess, endpoint: Any, data: Any) -> None:
    path, names = endpoint
    chosen = data.draw(st.lists(st.sampled_from(names or ["x"]), unique=True, max_size=4))
    params = {n: data.draw(_PARAM_VALUES) for n in chosen}
    try:
        resp = httpx.get(f"{collector.url}{path}", params=params, timeout=60)
    except (httpx.InvalidURL, UnicodeEncodeError):
        return  # the client refused to send it
    assert resp.status_code < 500, (path, params, resp.status_code, resp.text[:300])
    assert resp.status_code in (200, 400), (path, params, resp.status_code)


def test_after_the_fuzz_everything_answers_and_survives_a_restart(collector: CollectorProcess) -> None:
    # Runs after the fuzz tests in this module (file order); stands alone too.
    good = make_request([span_dict(_GENAI) for _ in range(3)], "fuzz-after").SerializeToString()
    assert collector.post_otlp(good).status_code == 200
    assert collector.get("/healthz").status_code == 200

    def snapshot() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, params in GET_ENDPOINTS:
            resp = collector.get(path, **params)
            assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
            out[f"{path}?{sorted(params.items())}"] = resp.json()
        return out

    before = snapshot()
    spend = before[f"/api/v1/spend?{sorted(GET_ENDPOINTS[0][1].items())}"]
    collector.terminate()
    collector.start()
    after = snapshot()
    assert after[f"/api/v1/spend?{sorted(GET_ENDPOINTS[0][1].items())}"] == spend
    assert (
        after[f"/api/v1/calls?{sorted(GET_ENDPOINTS[8][1].items())}"]["rows"]
        == (before[f"/api/v1/calls?{sorted(GET_ENDPOINTS[8][1].items())}"]["rows"])
    )
