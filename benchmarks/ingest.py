"""End-to-end ingest throughput of the collector: OTLP protobuf over HTTP, 512-span batches, commit included.

A real collector subprocess with a fresh DuckDB file; sender processes post pre-built requests over
keep-alive connections, each waiting for its 200 (which the collector sends after the commit).
The same-run baseline is a plain DuckDB Arrow insert of the same rows into the same schema, so the
ratio says how much the receiver, decode, normalization and pricing cost on top of storage.

    python -m benchmarks.ingest [--spans 300000] [--senders 16] [--prefill 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["build_payloads", "main"]

BATCH = 512
MODELS = [
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("gpt-4o", "gpt-4o-2024-08-06"),
    ("gpt-4.1", "gpt-4.1-2025-04-14"),
    ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
    ("text-embedding-3-small", "text-embedding-3-small"),
]


def _span_attrs(rng: random.Random, i: int) -> dict[str, Any]:
    req, resp = MODELS[i % len(MODELS)]
    err = rng.random() < 0.02
    attrs: dict[str, Any] = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "embeddings" if req.startswith("text-") else "chat",
        "gen_ai.request.model": req,
        "gen_ai.response.model": resp,
        "server.address": "api.openai.com",
        "server.port": 443,
        "http.response.status_code": 429 if err else 200,
        "spendscope.attempt": 0,
        "spendscope.openai.request_id": f"req_{rng.getrandbits(64):016x}",
        "spendscope.openai.project": f"proj_{i % 7}",
        "spendscope.user": f"user-{rng.randrange(5000)}",
        "spendscope.feature": ("search", "chat", "summarize", "tagging")[i % 4],
        "spendscope.ratelimit.limit_requests": 10_000,
        "spendscope.ratelimit.remaining_requests": rng.randrange(10_000),
        "spendscope.ratelimit.limit_tokens": 2_000_000,
        "spendscope.ratelimit.remaining_tokens": rng.randrange(2_000_000),
    }
    if err:
        attrs["error.type"] = "rate_limit_exceeded"
    else:
        inp = rng.randrange(20, 8000)
        attrs["gen_ai.usage.input_tokens"] = inp
        attrs["spendscope.usage.source"] = "response"
        if not req.startswith("text-"):
            attrs["gen_ai.response.id"] = f"chatcmpl-{rng.getrandbits(64):016x}"
            attrs["gen_ai.usage.cache_read.input_tokens"] = 1024 * rng.randrange(inp // 1024 + 1)
            attrs["gen_ai.usage.output_tokens"] = rng.randrange(1, 1200)
            attrs["gen_ai.response.finish_reasons"] = ["stop"]
    return attrs


def build_payloads(n_requests: int, seed: int, start_ns: int) -> list[bytes]:
    """``n_requests`` serialized ExportTraceServiceRequests of 512 unique spans each."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def any_value(v: Any) -> AnyValue:
        if isinstance(v, bool):
            return AnyValue(bool_value=v)
        if isinstance(v, int):
            return AnyValue(int_value=v)
        if isinstance(v, list):
            a = AnyValue()
            a.array_value.values.extend(any_value(x) for x in v)
            return a
        return AnyValue(string_value=str(v))

    rng = random.Random(seed)
    out = []
    for r in range(n_requests):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(
            KeyValue(key="service.name", value=AnyValue(string_value=f"svc-{seed % 3}"))
        )
        rs.resource.attributes.append(
            KeyValue(key="telemetry.sdk.language", value=AnyValue(string_value="python"))
        )
        ss = rs.scope_spans.add()
        ss.scope.name = "spendscope"
        for i in range(BATCH):
            s = ss.spans.add()
            s.trace_id = rng.randbytes(16)
            s.span_id = rng.randbytes(8)
            s.name = "chat gpt-4o-mini"
            s.kind = 3
            t = start_ns + (r * BATCH + i) * 1_000_000
            s.start_time_unix_nano = t
            s.end_time_unix_nano = t + rng.randrange(100, 3000) * 1_000_000
            for k, v in _span_attrs(rng, i).items():
                s.attributes.append(KeyValue(key=k, value=any_value(v)))
        out.append(req.SerializeToString())
    return out


def _sender(port: int, n_requests: int, seed: int, start_ns: int, ready: Any, go: Any, results: Any) -> None:
    payloads = build_payloads(n_requests, seed, start_ns)
    ready.release()
    go.wait()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    acked = refused = 0
    t0 = time.perf_counter()
    for body in payloads:
        while True:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                acked += BATCH
                break
            if resp.status in (429, 503):
                refused += 1
                time.sleep(float(resp.getheader("Retry-After") or 1) / 10)
                continue
            raise RuntimeError(f"unexpected status {resp.status}")
    results.put((acked, refused, time.perf_counter() - t0))
    conn.close()


def _wait_healthy(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("collector did not start")


def _cpu_seconds(root: int) -> tuple[float, float]:
    """User+system CPU of a process and of its children (the decode workers), from /proc; 0 elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    main = children = 0
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root:
            main += int(fields[11]) + int(fields[12])  # utime, stime
        elif ppid == root:
            children += int(fields[11]) + int(fields[12])
    return main / tick, children / tick


def _health(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/healthz")
    doc: dict[str, Any] = json.loads(conn.getresponse().read())
    return doc


def run_collector_bench(
    total_spans: int,
    senders: int,
    workdir: Path,
    settings: dict[str, str] | None = None,
    prefill: int = 0,
) -> dict[str, float]:
    import subprocess
    from datetime import UTC, datetime

    from tests.collector.helpers import free_port

    port = free_port()
    db = workdir / "bench.duckdb"
    if prefill:
        from benchmarks.query import build_db

        # Calls spread over the last 32 days: the new spans land among them, so the insert's
        # duplicate check and the checkpoints work against a table of that size.
        build_db(db, prefill, datetime.now(UTC))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPENDSCOPE_", "OTEL_"))}
    log = (workdir / "collector.log").open("wb")
    cmd = [sys.executable, "-m", "spendscope", "collector", "--port", str(port), "--db", str(db)]
    if settings:
        lines = "".join(f"{k} = {v}\n" for k, v in settings.items())
        (workdir / "bench.toml").write_text(f"[collector]\n{lines}")
        cmd += ["--config", str(workdir / "bench.toml")]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        _wait_healthy(port)
        per_sender = max(1, total_spans // BATCH // senders)
        ctx = mp.get_context("fork")
        ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        start_ns = time.time_ns() - 3 * 86_400 * 10**9
        procs = [
            ctx.Process(
                target=_sender,
                args=(port, per_sender, seed, start_ns + seed, ready, go, results),
            )
            for seed in range(senders)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.acquire()
        depths: list[int] = []
        stop = threading.Event()

        def sample() -> None:  # queue depth tells whether the writer or the decoding is the bottleneck
            while not stop.wait(0.1):
                try:
                    depths.append(int(_health(port)["queue_spans"]))
                except (OSError, ValueError, KeyError):
                    pass

        sampler = threading.Thread(target=sample, daemon=True)
        cpu0 = _cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        go.set()
        sampler.start()
        outs = [results.get(timeout=900) for _ in procs]
        elapsed = time.perf_counter() - t0
        cpu1 = _cpu_seconds(proc.pid)
        cpu_main, cpu_workers = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        stop.set()
        sampler.join(5)
        for p in procs:
            p.join(30)
        acked = sum(o[0] for o in outs)
        refused = sum(o[1] for o in outs)
        health = _health(port)
        return {
            "spans": acked,
            "seconds": elapsed,
            "spans_per_s": acked / elapsed,
            "refused_503": refused,
            "rows_committed": health["rows_committed"],
            "commits": health["commits"],
            "mean_queue_spans": sum(depths) / len(depths) if depths else 0.0,
            "cpu_us_per_span": (cpu_main + cpu_workers) / acked * 1e6 if acked else 0.0,
            "cpu_main_us_per_span": cpu_main / acked * 1e6 if acked else 0.0,
        }
    finally:
        proc.terminate()
        proc.wait(120)
        log.close()


def run_baseline(n_requests: int, workdir: Path) -> float:
    """Plain DuckDB: the same rows, pre-built as Arrow, inserted 512 at a time into ``calls``."""
    from spendscope.collector.ingest import build_batch, insert_batch
    from spendscope.collector.normalize import rows_from_protobuf
    from spendscope.collector.pricer import Pricer
    from spendscope.collector.store import Store
    from spendscope.pricing import PriceTable

    payloads = build_payloads(n_requests, 99, time.time_ns() - 86_400 * 10**9)
    pricer = Pricer(PriceTable.default())
    batches = [build_batch(rows_from_protobuf(b), pricer) for b in payloads]
    tables = [b.table for b in batches if b.table is not None]
    store = Store(str(workdir / "baseline.duckdb"))
    store.migrate()
    con = store.connection
    con.register("t_in", tables[0])
    con.execute("CREATE TABLE raw_in AS SELECT * FROM t_in LIMIT 0")
    con.unregister("t_in")
    t0 = time.perf_counter()
    for t in tables:
        con.register("t_in", t)
        con.execute("INSERT INTO raw_in SELECT * FROM t_in")
        con.unregister("t_in")
    elapsed_plain = time.perf_counter() - t0
    rows = sum(t.num_rows for t in tables)
    # The same rows through the collector's own insert statement (conversions + idempotency check).
    t1 = time.perf_counter()
    for b in batches:
        con.execute("BEGIN TRANSACTION")
        insert_batch(con, b.table, b.lo, b.hi, b.rejected)
        con.execute("COMMIT")
    elapsed_ours = time.perf_counter() - t1
    store.close()
    print(f"  baseline plain Arrow insert: {rows / elapsed_plain:,.0f} rows/s ({rows} rows, 512-row inserts)")
    print(f"  collector insert statement alone (dedupe + conversions): {rows / elapsed_ours:,.0f} rows/s")
    return rows / elapsed_plain


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=300_000, help="spans to send (default 300k)")
    parser.add_argument("--senders", type=int, default=16, help="concurrent sender processes (app instances)")
    parser.add_argument(
        "--decode-workers", type=int, default=None, help="collector decode_workers (default: auto)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=TOML",
        help="a [collector] setting for the run, e.g. --set 'duckdb_checkpoint_threshold=\"16MB\"'",
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="calls already stored before the run (e.g. 1000000)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (30k spans)")
    args = parser.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.set)
    if args.decode_workers is not None:
        settings["decode_workers"] = str(args.decode_workers)
    total = 30_000 if args.quick else args.spans
    with tempfile.TemporaryDirectory(prefix="spendscope-bench-") as tmp:
        work = Path(tmp)
        print(
            f"ingest: {total:,} spans in {BATCH}-span OTLP protobuf requests, {args.senders} senders, "
            f"{args.prefill:,} calls stored before (load average {os.getloadavg()[0]:.1f})"
        )
        base = run_baseline(max(20, min(200, total // BATCH // 4)), work)
        res = run_collector_bench(total, args.senders, work, settings, args.prefill)
        print(
            f"  collector end to end: {res['spans_per_s']:,.0f} spans/s "
            f"({res['spans']:,} spans acknowledged in {res['seconds']:.2f} s, {res['commits']} commits, "
            f"{res['refused_503']} 503 answers retried)"
        )
        print(f"  mean writer queue depth during the run: {res['mean_queue_spans']:,.0f} spans")
        cores = os.cpu_count() or 1
        if res["cpu_us_per_span"]:
            print(
                f"  collector CPU: {res['cpu_us_per_span']:.1f} µs per span "
                f"({res['cpu_main_us_per_span']:.1f} in the main process, the rest in decode workers), "
                f"so at most {cores / res['cpu_us_per_span'] * 1e6:,.0f} spans/s on {cores} idle cores"
            )
        print(f"  ratio collector / plain DuckDB Arrow insert: {res['spans_per_s'] / base:.3f}")
        print("  target: >= 30,000 spans/s sustained")
        if res["rows_committed"] != res["spans"]:
            print(f"  WARNING: rows committed {res['rows_committed']} != spans acknowledged {res['spans']}")


if __name__ == "__main__":
    main(sys.argv[1:])
