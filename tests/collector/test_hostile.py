"""Hostile input and hostile networks, through a real collector process: nothing a client sends breaks it.

One test per defect found by trying the collector as an attacker would (see the "Semantics of
hostile input" in docs/architecture.md). Each sends the bad input together with good spans where
that applies, checks that the bad part is refused with a reason and the good part is stored, and
that every query endpoint still answers.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict

pytestmark = [pytest.mark.server, pytest.mark.slow]

TOKEN = "hostile-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every documented GET endpoint of the query API, with parameters that make it read everything.
ALL_TIME = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
GET_ENDPOINTS = [
    ("/api/v1/spend", {**ALL_TIME, "group_by": "day,model,service,user,feature,project,api"}),
    ("/api/v1/spend", {**ALL_TIME, "group_by": "model", "rollup": "false"}),
    ("/api/v1/latency", {**ALL_TIME, "group_by": "model"}),
    ("/api/v1/latency", {**ALL_TIME, "group_by": "service", "exact": "true"}),
    ("/api/v1/errors", ALL_TIME),
    ("/api/v1/ratelimits", {"since": "2000-01-01T00:00:00Z"}),
    ("/api/v1/prices", {}),
    ("/api/v1/rejected", {"limit": "1000"}),
    ("/api/v1/calls", {**ALL_TIME, "limit": "1000"}),
    ("/api/v1/alerts", {"state": "all"}),
    ("/api/v1/reconciliation", ALL_TIME),
    ("/api/v1/usage", ALL_TIME),
    ("/api/v1/costs", ALL_TIME),
    ("/api/v1/sync/runs", {}),
    *(
        (f"/api/v1/insights/{name}", ALL_TIME)
        for name in (
            "summary",
            "breakdown",
            "timeseries",
            "headroom",
            "errors",
            "error_rate",
            "latency",
            "dimensions",
            "unpriced",
            "savings",
        )
    ),
    ("/api/v1/insights/breakdown", {**ALL_TIME, "by": "tag"}),
    ("/api/v1/insights/latency", {**ALL_TIME, "by": "model", "exact": "true"}),
    ("/healthz", {}),
]


def _get(c: CollectorProcess, path: str, params: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"{c.url}{path}", params=params or {}, headers=AUTH, timeout=60.0)


def _post(
    c: CollectorProcess, body: bytes, content_type: str = "application/x-protobuf", **h: str
) -> httpx.Response:
    headers = {"Content-Type": content_type, **AUTH, **h}
    return httpx.post(f"{c.url}/v1/traces", content=body, headers=headers, timeout=60.0)


def _rejected(resp: httpx.Response) -> tuple[int, str]:
    assert resp.status_code == 200, resp.text
    if resp.headers["content-type"].startswith("application/json"):
        doc = resp.json().get("partialSuccess", {})
        return int(doc.get("rejectedSpans", 0)), str(doc.get("errorMessage", ""))
    msg = ExportTraceServiceResponse.FromString(resp.content)
    return msg.partial_success.rejected_spans, msg.partial_success.error_message


def _every_endpoint_answers(c: CollectorProcess) -> None:
    for path, params in GET_ENDPOINTS:
        resp = _get(c, path, params)
        assert resp.status_code == 200, (path, params, resp.status_code, resp.text[:500])


def _stored(c: CollectorProcess, service: str) -> int:
    rows = _get(c, "/api/v1/spend", {**ALL_TIME, "group_by": "service"}).json()["rows"]
    return sum(r["calls"] for r in rows if r["service"] == service)


def _service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


def _json_request(spans: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"spans": spans}],
            }
        ]
    }


def _json_span(attrs: list[dict[str, Any]], name: str = "chat", **over: Any) -> dict[str, Any]:
    start = time.time_ns()
    base: dict[str, Any] = {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": name,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 10**8),
        "attributes": [
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            *attrs,
        ],
    }
    base.update(over)
    return base


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    c = CollectorProcess(tmp_path_factory.mktemp("hostile") / "h.duckdb", env={"SPENDSCOPE_TOKEN": TOKEN})
    c.start()
    yield c
    c.terminate()


def test_non_finite_numbers_are_refused_and_queries_still_answer(collector: CollectorProcess) -> None:
    svc = _service()
    bad = [
        {"gen_ai.response.time_to_first_chunk": math.nan},
        {"spendscope.ratelimit.reset_tokens_s": math.inf, "spendscope.ratelimit.limit_tokens": 100},
        {"spendscope.retry_after_s": -math.inf},
    ]
    spans = [span_dict(genai_attrs(**a)) for a in bad] + [span_dict(genai_attrs()) for _ in range(2)]
    n, msg = _rejected(_post(collector, make_request(spans, svc).SerializeToString()))
    assert n == 3 and "finite" in msg
    # OTLP/JSON spells them "NaN", "Infinity", or as numbers beyond a double.
    doubles = [{"stringValue": "x"}, {"doubleValue": "NaN"}, {"doubleValue": "-Infinity"}]
    json_spans = [
        _json_span([{"key": "gen_ai.response.time_to_first_chunk", "value": v}]) for v in doubles[1:]
    ] + [_json_span([])]
    body = json.dumps(_json_request(json_spans, svc)).encode()
    n, _ = _rejected(_post(collector, body, "application/json"))
    assert n == 2
    # JSON's own non-finite spellings, and a number beyond a double.
    for literal in ("Infinity", "NaN", "1e400"):
        span = _json_span([])
        text = json.dumps(_json_request([span, _json_span([])], svc))
        marker = '"attributes": [{"key": "gen_ai.provider.name"'
        bad = f'"attributes": [{{"key": "spendscope.retry_after_s", "value": {{"doubleValue": {literal}}}}}, '
        text = text.replace(marker, bad + marker[len('"attributes": [') :], 1)
        n, _ = _rejected(_post(collector, text.encode(), "application/json"))
        assert n == 1, literal
    assert _stored(collector, svc) == 2 + 1 + 3
    _every_endpoint_answers(collector)


def test_counts_beyond_a_safe_sum_are_refused(collector: CollectorProcess) -> None:
    svc = _service()
    huge = [
        span_dict(genai_attrs("no-such-model-x", **{"gen_ai.usage.input_tokens": 2**62 - 1}))
        for _ in range(3)
    ]
    n, msg = _rejected(
        _post(collector, make_request([*huge, span_dict(genai_attrs())], svc).SerializeToString())
    )
    assert n == 3 and "out of range" in msg
    assert _stored(collector, svc) == 1
    _every_endpoint_answers(collector)


@pytest.mark.local_file
def test_aggregates_are_safe_against_what_was_stored(tmp_path: Path) -> None:
    # Rows a hostile client got stored before the limits existed: sums past 2^63 still answer, exactly.
    c = CollectorProcess(tmp_path / "old.duckdb")
    c.start()
    assert (
        c.post_otlp(make_request([span_dict(genai_attrs())], "seed").SerializeToString()).status_code == 200
    )
    c.terminate()
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute(
        "INSERT INTO calls SELECT c.* REPLACE (md5(random()::VARCHAR) AS trace_id, 4611686018427387903 AS "
        "input_tokens, 4611686018427387903 AS output_tokens, NULL AS cost_usd, 'unpriced' AS pricing_status) "
        "FROM calls c, range(3)"
    )
    con.execute("UPDATE rollup_state SET dirty = true")  # as the writer would have marked the day
    con.close()
    c.start()
    try:
        for path, params in GET_ENDPOINTS:
            resp = c.get(path, **params)
            assert resp.status_code == 200, (path, resp.text[:300])
        totals = c.get("/api/v1/spend", **ALL_TIME).json()["totals"]
        assert totals["input_tokens"] == totals["output_tokens"] == 3 * (2**62 - 1)  # past 2^63, exact
    finally:
        c.terminate()


def test_idle_and_slow_connections_cannot_starve_the_server(tmp_path: Path) -> None:
    c = CollectorProcess(tmp_path / "idle.duckdb", env={"SPENDSCOPE_TOKEN": TOKEN})
    c.start()
    socks: list[socket.socket] = []
    stop = threading.Event()
    body = make_request([span_dict(genai_attrs())], "idle").SerializeToString()
    assert _post(c, body).status_code == 200  # the first ingest's warm-up is not what is measured
    try:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
            if i % 3 == 0:
                s.sendall(b"GET /api/v1/spend HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finish
            socks.append(s)

        def trickle() -> None:
            s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
            s.sendall(b"POST /v1/traces HTTP/1.1\r\n")
            try:
                while not stop.is_set():
                    s.sendall(b"X-A: b\r\n")
                    time.sleep(0.5)
            except OSError:
                pass
            finally:
                s.close()

        threads = [threading.Thread(target=trickle, daemon=True) for _ in range(5)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        assert httpx.get(f"{c.url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - t0 < 2.0
        t0 = time.monotonic()
        body = make_request([span_dict(genai_attrs())], "idle").SerializeToString()
        assert _post(c, body).status_code == 200
        assert time.monotonic() - t0 < 2.0
        # The server closes what sends no complete request within its header timeout.
        deadline = time.monotonic() + 30
        open_socks = list(socks)
        while open_socks and time.monotonic() < deadline:
            for s in list(open_socks):
                s.settimeout(0.01)
                try:
                    if s.recv(1024) == b"":
                        open_socks.remove(s)
                except TimeoutError:
                    pass
                except OSError:
                    open_socks.remove(s)
            time.sleep(0.2)
        assert not open_socks, f"{len(open_socks)} idle connections still open"
    finally:
        stop.set()
        for s in socks:
            s.close()
        c.terminate()


def test_headers_and_a_large_body_in_one_write_are_served(collector: CollectorProcess) -> None:
    # The header cap counts header bytes only: a read holding the headers and 1 MiB of body is fine.
    svc = _service()
    body = make_request([span_dict(genai_attrs()) for _ in range(2000)], svc).SerializeToString()
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", collector.port), timeout=60) as s:
        s.sendall(head + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert _stored(collector, svc) == 2000


def test_a_connection_answered_early_keeps_working(tmp_path: Path) -> None:
    # A 503 (queue full) is answered before the body is read; the body that still arrives belongs to
    # that request, and the keep-alive connection serves the next one (it was once cut as "headers").
    import http.client

    cfg = tmp_path / "q.toml"
    cfg.write_text("[collector]\nmax_queue_spans = 600\nwriter_linger_ms = 300\n")
    c = CollectorProcess(tmp_path / "q.duckdb", config=cfg)
    c.start()
    errors: list[BaseException] = []
    refused = [0]

    def sender(seed: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=60)
            for _ in range(4):
                body = make_request(
                    [span_dict(genai_attrs()) for _ in range(512)], "early"
                ).SerializeToString()
                while True:
                    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        break
                    assert resp.status == 503, resp.status
                    refused[0] += 1
                    time.sleep(0.05)
            conn.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        assert _stored(c, "early") == 8 * 4 * 512
    finally:
        c.terminate()


def test_no_state_change_from_a_browser_page(collector: CollectorProcess, tmp_path: Path) -> None:
    url = collector.url
    # A cross-site form or fetch without preflight can only send simple content types.
    simple = {"Content-Type": "text/plain", **AUTH}
    for path in (
        "/api/v1/alerts/silences",
        "/api/v1/prices/reprice",
        "/api/v1/sync",
        "/api/v1/alerts/x/test",
    ):
        resp = httpx.post(f"{url}{path}", content=b'{"rule": "x", "duration": "1000y"}', headers=simple)
        assert resp.status_code == 415, (path, resp.status_code, resp.text)
    foreign = {"Content-Type": "application/json", "Origin": "http://evil.example", **AUTH}
    resp = httpx.post(f"{url}/api/v1/prices/reprice", content=b'{"since": "2026-01-01"}', headers=foreign)
    assert resp.status_code == 403
    resp = httpx.post(
        f"{url}/v1/traces", content=b"", headers={**foreign, "Content-Type": "application/x-protobuf"}
    )
    assert resp.status_code == 403
    # DNS rebinding: a loopback collector answers only loopback names.
    resp = httpx.get(f"{url}/api/v1/spend", headers={"Host": "evil.example", **AUTH})
    assert resp.status_code == 403
    assert (
        httpx.get(f"{url}/api/v1/spend", headers={"Host": f"localhost:{collector.port}", **AUTH}).status_code
        == 200
    )
    # Same-origin JSON from the collector's own host is fine.
    same = {"Content-Type": "application/json", "Origin": url, **AUTH}
    assert (
        httpx.post(
            f"{url}/api/v1/prices/reprice", content=b'{"since": "2026-01-01T00:00:00Z"}', headers=same
        ).status_code
        == 200
    )


def test_a_non_loopback_bind_needs_a_token_or_an_explicit_opt_out(tmp_path: Path) -> None:
    c = CollectorProcess(tmp_path / "open.duckdb")
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "spendscope",
        "collector",
        "--host",
        "0.0.0.0",
        "--port",
        str(c.port),
        "--db",
        str(c.db),
    ]
    out = subprocess.run(cmd, check=False, env=c.env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "SPENDSCOPE_TOKEN" in out.stderr + out.stdout
    cfg = tmp_path / "open.toml"
    cfg.write_text('[collector]\nallow_unauthenticated = true\nhost = "0.0.0.0"\n')
    c2 = CollectorProcess(tmp_path / "open2.duckdb", config=cfg)
    c2.start()
    c2.terminate()


def test_bad_unicode_rejects_its_span_only(collector: CollectorProcess) -> None:
    svc = _service()
    spans = [
        _json_span([], name="bad \ud800 name"),
        _json_span([{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-\udfff"}}]),
        _json_span([{"key": "spendscope.tag.team", "value": {"stringValue": "\ud834"}}]),
        _json_span([]),
        _json_span([{"key": "spendscope.feature", "value": {"stringValue": "ok \U0001f600"}}]),
    ]
    body = json.dumps(_json_request(spans, svc)).encode()  # ensure_ascii: lone surrogates as \\ud800
    n, _ = _rejected(_post(collector, body, "application/json"))
    assert n == 3
    assert _stored(collector, svc) == 2
    # Invalid UTF-8 in a protobuf span name: that span alone.
    req = make_request([span_dict(genai_attrs()), span_dict(genai_attrs())], svc)
    raw = req.SerializeToString()
    raw = raw.replace(b"\x2a\x04chat", b"\x2a\x04ch\xff\xfe", 1)  # Span.name (field 5) of the first span
    n, _ = _rejected(_post(collector, raw))
    assert n == 1
    assert _stored(collector, svc) == 3
    _every_endpoint_answers(collector)


def test_extreme_values_are_400_never_500(collector: CollectorProcess) -> None:
    svc = _service()
    span = _json_span([], startTimeUnixNano="9" * 30)
    n, _ = _rejected(
        _post(collector, json.dumps(_json_request([span, _json_span([])], svc)).encode(), "application/json")
    )
    assert n == 1
    bad_params = [
        ("/api/v1/spend", {"end": "0001-01-01"}),
        ("/api/v1/spend", {"end": "9999-12-31T23:59:59-14:00"}),
        ("/api/v1/spend", {"start": "0001-01-01T00:00:00+14:00"}),
        ("/api/v1/calls", {"limit": "²"}),
        ("/api/v1/calls", {"limit": "9" * 5000}),
        ("/api/v1/rejected", {"limit": "-1"}),
        ("/api/v1/ratelimits", {"since": "x" * 10_000}),
    ]
    for path, params in bad_params:
        resp = _get(collector, path, params)
        assert resp.status_code == 400, (path, params, resp.status_code, resp.text[:200])
        assert "error" in resp.json()
    # Undecodable bytes in the query string.
    resp = httpx.get(f"{collector.url}/api/v1/insights/breakdown?by=%ED%A0%80&model=%FF", headers=AUTH)
    assert resp.status_code == 400, resp.text
    for duration in (1e30, "1e30s", -5, "nan", "9" * 5000):
        resp = httpx.post(
            f"{collector.url}/api/v1/alerts/silences",
            json={"rule": "nope", "duration": duration},
            headers=AUTH,
        )
        assert resp.status_code == 400, (duration, resp.text)


def test_multi_member_gzip_is_read_whole_and_junk_refused(collector: CollectorProcess) -> None:
    svc = _service()
    a = make_request([span_dict(genai_attrs())], svc).SerializeToString()
    b = make_request([span_dict(genai_attrs())], svc).SerializeToString()
    # Two members decompress to two requests' bytes back to back, which protobuf reads as one merged message.
    body = gzip.compress(a) + gzip.compress(b)
    assert _post(collector, body, **{"Content-Encoding": "gzip"}).status_code == 200
    assert _stored(collector, svc) == 2
    resp = _post(collector, gzip.compress(a) + b"trailing junk", **{"Content-Encoding": "gzip"})
    assert resp.status_code == 400


SECRETS = [
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123456789",
    "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "hunter2-password",
]


def test_rejected_spans_keep_no_secrets(collector: CollectorProcess) -> None:
    svc = _service()
    attrs = {
        "gen_ai.operation.name": "chat",  # GenAI without a model: rejected, attributes kept for diagnosis
        "http.request.header.authorization": SECRETS[1],
        "openai.api_key": SECRETS[0],
        "db.password": SECRETS[2],
        "gen_ai.prompt": f"please use my key {SECRETS[0]} for this",
        "note": "nothing secret here",
    }
    n, _ = _rejected(_post(collector, make_request([span_dict(attrs)], svc).SerializeToString()))
    assert n == 1
    rows = [r for r in _get(collector, "/api/v1/rejected").json()["rows"] if r["service"] == svc]
    text = json.dumps(rows)
    assert rows and not any(s in text for s in SECRETS), text
    assert "nothing secret here" in text and "REDACTED" in text


def test_sizes_are_bounded(collector: CollectorProcess) -> None:
    svc = _service()
    long_model = "m" * (7 * 1024 * 1024)
    many_tags = genai_attrs(**{f"spendscope.tag.k{i}": "v" for i in range(200_000)})
    spans = [
        span_dict(genai_attrs(long_model)),
        span_dict(many_tags),
        span_dict(genai_attrs(**{"spendscope.user": "u" * 5000})),
    ]
    n, msg = _rejected(
        _post(collector, make_request([*spans, span_dict(genai_attrs())], svc).SerializeToString())
    )
    assert n == 3 and "4096" in msg and "1000 tags" in msg
    assert _stored(collector, svc) == 1
    resp = _get(collector, "/api/v1/rejected", {"limit": "10"})
    assert len(resp.content) < 200_000
    dims = _get(collector, "/api/v1/insights/dimensions", ALL_TIME)
    assert dims.status_code == 200 and len(dims.content) < 5_000_000


def test_memory_bound_counts_bodies_before_they_are_read(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[collector]\nmax_concurrent_decodes = 2\ndecode_workers = 0\n")
    c = CollectorProcess(tmp_path / "mem.duckdb", config=cfg)
    c.start()
    try:
        body = make_request([span_dict(genai_attrs())], "mem").SerializeToString()
        payload = body + b"\x00" * 0  # the real body, sent slowly after its headers

        def slow() -> None:
            with socket.create_connection(("127.0.0.1", c.port), timeout=30) as s:
                head = (
                    f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n"
                ).encode()
                s.sendall(head)
                for i in range(0, len(payload), 16):
                    s.sendall(payload[i : i + 16])
                    time.sleep(0.05)
                s.recv(4096)

        threads = [threading.Thread(target=slow, daemon=True) for _ in range(12)]
        for t in threads:
            t.start()
        peak = 0
        deadline = time.monotonic() + 20
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            peak = max(peak, c.get("/healthz").json()["bodies_in_memory"])
            time.sleep(0.05)
        for t in threads:
            t.join(30)
        assert 1 <= peak <= 2
    finally:
        c.terminate()
