"""The dashboard's API calls at 1M stored calls: every page's requests, timed through a real collector.

Builds the query benchmark's 1M-call database (30+ days, 20 models), starts a collector on it and
issues, for each page, exactly the requests the page makes for the default 30-day range (day
buckets), as the dashboard does on a rerun. Target: each page's calls complete within 300 ms.
The same-run baseline is ``/healthz`` (an HTTP round trip that queries nothing).

    python -m benchmarks.dashboard [--rows 1000000] [--runs 7] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.query import _load, _start_collector, build_db

__all__ = ["main"]


def _pages(start: str, end: str) -> dict[str, list[tuple[str, dict[str, str]]]]:
    rng = {"start": start, "end": end}
    return {
        "overview": [
            ("/api/v1/insights/summary", rng),
            ("/api/v1/insights/timeseries", {**rng, "bucket": "day", "split": "model"}),
            ("/api/v1/alerts", {"state": "firing"}),
        ],
        "spend": [
            ("/api/v1/insights/breakdown", {**rng, "by": "model"}),
            ("/api/v1/insights/timeseries", {**rng, "bucket": "day", "split": "model"}),
            ("/api/v1/insights/savings", rng),
        ],
        "reconciliation": [("/api/v1/reconciliation", {**rng, "group_by": "day"})],
        "rate limits": [
            ("/api/v1/insights/headroom", {**rng, "bucket": "day"}),
            ("/api/v1/ratelimits", {"since": start}),
        ],
        "reliability": [
            ("/api/v1/insights/error_rate", {**rng, "bucket": "day"}),
            ("/api/v1/insights/errors", rng),
            ("/api/v1/insights/latency", {**rng, "by": "model"}),
            ("/api/v1/insights/latency", {**rng, "by": "model", "bucket": "day"}),
        ],
        "alerts": [("/api/v1/alerts", {"state": "firing"}), ("/api/v1/alerts", {"state": "all"})],
        "pricing": [("/api/v1/insights/unpriced", rng), ("/api/v1/prices", {"at": end})],
        "sidebar": [("/api/v1/insights/dimensions", rng)],
    }


def _get(conn: http.client.HTTPConnection, path: str, params: dict[str, str]) -> float:
    url = path + ("?" + urllib.parse.urlencode(params) if params else "")
    started = time.perf_counter()
    conn.request("GET", url)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{url}: {response.status} {body[:300]!r}")
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args, _ = parser.parse_known_args(argv)
    if args.quick:
        args.rows, args.runs = 100_000, 3
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="spendscope-bench-dash-") as tmp:
        work = Path(tmp)
        db = work / "bench.duckdb"
        started = time.perf_counter()
        build_db(db, args.rows, now)
        print(f"  built {args.rows:,} calls in {time.perf_counter() - started:.0f}s")
        proc, port = _start_collector(db, work)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            start = (now - timedelta(days=30)).isoformat()
            end = (now + timedelta(seconds=1)).isoformat()
            baseline = statistics.median(_get(conn, "/healthz", {}) for _ in range(20))
            print(f"  baseline /healthz round trip: {baseline:.1f} ms   load average {_load()}")
            worst = 0.0
            for page, calls in _pages(start, end).items():
                for path, params in calls:
                    _get(conn, path, params)  # cold run, not counted
                totals = [sum(_get(conn, path, params) for path, params in calls) for _ in range(args.runs)]
                median = statistics.median(totals)
                worst = max(worst, median)
                verdict = "OK" if median <= 300 else "OVER 300 ms"
                print(
                    f"  {page:<15} {len(calls)} call(s): median {median:7.1f} ms per page load "
                    f"({median / baseline:.0f}x the /healthz round trip)  {verdict}"
                )
            print(
                f"  slowest page: {worst:.1f} ms (target <= 300 ms at {args.rows:,} calls)   "
                f"load average {_load()}"
            )
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
