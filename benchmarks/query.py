"""Query API latency at 1M (default) or 10M (``--large``) stored calls.

Builds a ``calls`` table in DuckDB SQL (30+ days in time order, 20 models, 7 projects, 5000 users),
rolls it up the way the collector does, then times through a real collector's HTTP API:

* ``/api/v1/spend?group_by=day,model`` over the last 30 days (rollups + the partial edge days);
* ``/api/v1/latency?group_by=model`` over 30 days (percentiles from the daily latency histograms
  + the partial edge days);
* ``/metrics``, a Prometheus scrape: all-time totals by service, model and project (rollups + the
  dirty current day), the latest rate-limit headroom of the last 24 hours, alerts and health.

The same-run baseline is the equivalent raw SQL on the base table (no rollup, no HTTP, exact
percentiles; for the scrape, the all-time totals alone). The load average is printed with the
figures: the VM may be shared.

    python -m benchmarks.query [--rows 1000000] [--large] [--runs 15] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["build_db", "main"]

_GENERATE = """
INSERT INTO calls
SELECT
    lower(hex(i::UHUGEINT * 2654435761 + 17)) AS trace_id,
    lower(hex(i::UBIGINT * 40503 + 3)) AS span_id,
    $t0::TIMESTAMPTZ + to_microseconds((i * $step)::BIGINT) AS start_time,
    $t0::TIMESTAMPTZ + to_microseconds((i * $step)::BIGINT + lat_us) AS end_time,
    ($t0::TIMESTAMPTZ + to_microseconds((i * $step)::BIGINT))::DATE AS day,
    'svc-' || (i % 4) AS service,
    'openai' AS provider,
    'chat' AS operation,
    CASE WHEN i % 10 = 0 THEN 'responses' ELSE 'chat_completions' END AS api,
    'chat' AS span_name,
    'api.openai.com' AS server_address,
    'model-' || (i % 20) AS request_model,
    'model-' || (i % 20) || '-2025' AS response_model,
    'model-' || (i % 20) || '-2025' AS model,
    'proj_' || (i % 7) AS project,
    'org_1' AS organization,
    'user-' || (hash(i) % 5000) AS user_id,
    'feature-' || (i % 9) AS feature,
    NULL AS tags,
    i % 3 = 0 AS stream,
    CASE WHEN i % 3 = 0 THEN true END AS stream_completed,
    CASE WHEN i % 50 = 0 THEN 429 ELSE 200 END AS status_code,
    i % 50 = 0 AS is_error,
    CASE WHEN i % 50 = 0 THEN 'rate_limit_exceeded' END AS error_type,
    lat_us / 1e6 AS duration_s,
    CASE WHEN i % 3 = 0 THEN lat_us / 4e6 END AS ttfc_s,
    CASE WHEN i % 50 <> 0 THEN 20 + hash(i) % 8000 END AS input_tokens,
    CASE WHEN i % 50 <> 0 THEN (hash(i) % 4) * 256 END AS cached_input_tokens,
    NULL AS cache_write_input_tokens,
    CASE WHEN i % 50 <> 0 THEN 1 + hash(i * 7) % 1200 END AS output_tokens,
    CASE WHEN i % 50 <> 0 AND i % 20 > 15 THEN hash(i) % 500 END AS reasoning_tokens,
    NULL AS input_audio_tokens,
    NULL AS output_audio_tokens,
    'default' AS service_tier,
    false AS batch,
    0 AS attempt,
    'req_' || i AS request_id,
    NULL AS response_id,
    10000 AS ratelimit_limit_requests,
    hash(i) % 10000 AS ratelimit_remaining_requests,
    2000000 AS ratelimit_limit_tokens,
    hash(i) % 2000000 AS ratelimit_remaining_tokens,
    0.5 AS ratelimit_reset_requests_s,
    0.2 AS ratelimit_reset_tokens_s,
    NULL AS retry_after_s,
    'response' AS usage_source,
    'openai:model-' || (i % 20) || ':2025-01-01:default' AS price_id,
    CASE WHEN i % 50 = 0 THEN 'no_usage' ELSE 'priced' END AS pricing_status,
    CASE WHEN i % 50 = 0 THEN 0 ELSE ((20 + hash(i) % 8000) * 0.0000025 + (1 + hash(i * 7) % 1200) * 0.00001)
        END::DECIMAL(38, 12) AS cost_usd,
    current_timestamp AS ingested_at
FROM (SELECT range AS i, (200000 + hash(range) % 3000000)::BIGINT AS lat_us FROM range($lo, $hi))
"""

_SETTLE_S = 3.0
_WARMUP = 3

_RAW_SPEND = """
SELECT day, model, count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors, sum(input_tokens),
       sum(cached_input_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost_usd),
       count(*) FILTER (WHERE cost_usd IS NULL)
FROM calls WHERE start_time >= $start AND start_time < $end GROUP BY day, model ORDER BY day, model
"""
_RAW_LATENCY = """
SELECT model, count(*), quantile_cont(duration_s, [0.5, 0.95, 0.99]) FILTER (WHERE NOT is_error),
       quantile_cont(ttfc_s, [0.5, 0.95]) FILTER (WHERE NOT is_error)
FROM calls WHERE start_time >= $start AND start_time < $end GROUP BY model ORDER BY model
"""
_RAW_METRICS = """
SELECT service, model, project, count(*), count(*) FILTER (WHERE is_error), sum(input_tokens),
       sum(cached_input_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost_usd),
       count(*) FILTER (WHERE cost_usd IS NULL)
FROM calls GROUP BY ALL
"""
_NAMES = ("spend", "latency", "metrics")


def build_db(path: Path, rows: int, now: datetime) -> None:
    """``rows`` calls evenly spread over the 32 days before ``now``, rolled up."""
    from spendscope.collector.components import migrate
    from spendscope.collector.rollups import roll_dirty_days
    from spendscope.collector.store import Store

    store = Store(str(path))
    migrate(store)
    con = store.connection
    span_us = int(timedelta(days=32).total_seconds() * 1e6)
    t0 = now - timedelta(days=32)
    step = span_us / rows
    chunk = 2_000_000
    for lo in range(0, rows, chunk):
        con.execute(_GENERATE, {"t0": t0, "step": step, "lo": lo, "hi": min(rows, lo + chunk)})
    con.execute("INSERT INTO rollup_state (day, dirty) SELECT DISTINCT day, true FROM calls")
    roll_dirty_days(con, now)
    # The current day keeps receiving calls in a live collector: leave it dirty, as it would be.
    con.execute("UPDATE rollup_state SET dirty = true WHERE day = $d", {"d": now.date()})
    store.close()


def _time_raw(path: Path, start: datetime, end: datetime, runs: int) -> dict[str, list[float]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    out: dict[str, list[float]] = {name: [] for name in _NAMES}
    for name, sql in zip(_NAMES, (_RAW_SPEND, _RAW_LATENCY, _RAW_METRICS), strict=True):
        params = {"start": start, "end": end} if "$start" in sql else {}
        for _ in range(_WARMUP):  # cold runs, not counted
            con.execute(sql, params).fetchall()
        for _ in range(runs):
            t = time.perf_counter()
            con.execute(sql, params).fetchall()
            out[name].append((time.perf_counter() - t) * 1000)
    con.close()
    return out


def _time_api(port: int, start: datetime, end: datetime, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in _NAMES}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    paths = {
        "spend": "/api/v1/spend?"
        + urllib.parse.urlencode(
            {"start": start.isoformat(), "end": end.isoformat(), "group_by": "day,model"}
        ),
        "latency": "/api/v1/latency?"
        + urllib.parse.urlencode({"start": start.isoformat(), "end": end.isoformat(), "group_by": "model"}),
        "metrics": "/metrics",
    }
    for name, path in paths.items():
        for i in range(runs + _WARMUP):
            t = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status} {body[:300]!r}")
            if i >= _WARMUP:  # the first runs read cold pages
                out[name].append((time.perf_counter() - t) * 1000)
        if name == "metrics":
            samples = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
            print(f"  ({name}: {len(samples)} samples, {len(body):,} bytes)")
        else:
            print(f"  ({name}: {len(json.loads(body)['rows'])} rows)")
    return out


def _start_collector(db: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    from tests.collector.helpers import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPENDSCOPE_", "OTEL_"))}
    log = (work / "collector.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spendscope", "collector", "--port", str(port), "--db", str(db)],
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                # Let start-up work finish (decode worker processes importing, the start-up rollup
                # of dirty days) so that the timings measure queries, not a starting process.
                time.sleep(_SETTLE_S)
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("collector did not start")


def _load() -> str:
    # The VM is shared: the load next to a figure says how much CPU the run really had.
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _summary(ms: list[float]) -> str:
    s = sorted(ms)
    return f"median {statistics.median(s):7.1f} ms  p95 {s[int(0.95 * (len(s) - 1))]:7.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.query", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="stored calls (default 1M)")
    parser.add_argument("--large", action="store_true", help="10M stored calls")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a smoke run (200k calls, 5 runs)")
    args = parser.parse_args(argv)
    rows = 10_000_000 if args.large else 200_000 if args.quick else args.rows
    runs = 5 if args.quick else args.runs
    now = datetime.now(UTC)
    end, start = now, now - timedelta(days=30)
    with tempfile.TemporaryDirectory(prefix="spendscope-qbench-") as tmp:
        work = Path(tmp)
        db = work / "query.duckdb"
        t = time.perf_counter()
        build_db(db, rows, now)
        size_mb = db.stat().st_size / 1e6
        print(
            f"query: {rows:,} calls over 32 days built in {time.perf_counter() - t:.1f} s ({size_mb:,.0f} MB)"
        )
        print(f"  load average before timing: {_load()}")
        raw = _time_raw(db, start, end, runs)
        proc, port = _start_collector(db, work)
        try:
            api = _time_api(port, start, end, runs)
        finally:
            proc.terminate()
            proc.wait(60)
        for name, label, target in (
            ("spend", "spend group_by=day,model, 30 days", 100),
            ("latency", "latency percentiles per model, 30 days", 500),
            ("metrics", "Prometheus scrape /metrics (all-time totals, headroom, health)", 100),
        ):
            ratio = statistics.median(api[name]) / statistics.median(raw[name])
            print(f"  {label}")
            print(
                f"    API (HTTP, rollups where they apply): {_summary(api[name])}"
                f"   target <= {target} ms at 10M"
            )
            print(f"    raw SQL on calls (baseline):          {_summary(raw[name])}")
            print(f"    ratio API / raw SQL: {ratio:.2f}")
        print(f"  load average after timing: {_load()}")


if __name__ == "__main__":
    main(sys.argv[1:])
