"""Crash safety (kill -9 mid-stream) and overload (many exporters against a small queue)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.collector.helpers import REPO, CollectorProcess, open_calls

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _start_exporters(
    url: str, tmp: Path, n: int, *, batches: int, batch_size: int, feature: str, pause: float = 0.0
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    procs = []
    for i in range(n):
        out = tmp / f"{feature}-{i}.txt"
        cmd = [
            sys.executable,
            "-m",
            "tests.collector.exporter_app",
            "--endpoint",
            f"{url}/v1/traces",
            "--out",
            str(out),
            "--batches",
            str(batches),
            "--batch-size",
            str(batch_size),
            "--feature",
            feature,
            "--pause",
            str(pause),
        ]
        procs.append((subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.DEVNULL), out))
    return procs


def _read_results(outs: list[Path]) -> tuple[set[str], set[str]]:
    acked: set[str] = set()
    failed: set[str] = set()
    for out in outs:
        for line in out.read_text().splitlines():
            status, _, ids = line.partition(" ")
            (acked if status == "ok" else failed).update(x for x in ids.split(",") if x)
    return acked, failed


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _stored(db: Path, feature: str) -> dict[str, int]:
    con = open_calls(db)
    try:
        rows = con.execute(
            "SELECT trace_id || ':' || span_id, count(*) FROM calls WHERE feature = ? GROUP BY ALL", [feature]
        ).fetchall()
    finally:
        con.close()
    return {k: int(n) for k, n in rows}


def test_kill_9_loses_no_acknowledged_span(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    col = CollectorProcess(db).start()
    try:
        procs = _start_exporters(col.url, tmp_path, 3, batches=30, batch_size=40, feature="crash", pause=0.05)
        # Let some batches be acknowledged, then pull the plug while exports are in flight.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            acked, _ = _read_results([o for _, o in procs if o.exists()])
            if len(acked) >= 400:
                break
            time.sleep(0.05)
        assert col.proc is not None
        workers = _children(col.proc.pid)
        assert workers or (os.cpu_count() or 1) < 2, "expected decode worker processes"
        col.proc.kill()
        col.proc.wait(10)
        # Its decode workers notice and exit too (no orphans left behind by a crash).
        deadline = time.monotonic() + 15
        while workers and time.monotonic() < deadline:
            workers = [w for w in workers if Path(f"/proc/{w}").exists()]
            time.sleep(0.2)
        assert not workers, f"decode workers {workers} outlived the collector"
        acked_before_crash, _ = _read_results([o for _, o in procs if o.exists()])
        time.sleep(1.0)
        col.start()  # same port, same file: DuckDB replays its WAL
        for p, _ in procs:
            assert p.wait(120) == 0, "an exporter gave up (its retries should cover the restart)"
    finally:
        col.terminate()
        col.kill()
    acked, failed = _read_results([o for _, o in procs])
    assert not failed
    assert len(acked_before_crash) >= 400
    stored = _stored(db, "crash")
    assert acked_before_crash <= stored.keys(), "a span acknowledged before the crash is missing"
    assert acked <= stored.keys(), "exporter retries did not fill in after the restart"
    assert set(stored.values()) == {1}, "a span is stored twice"
    assert len(stored) == 3 * 30 * 40


def test_overload_bounded_queue_nothing_acked_lost(tmp_path: Path) -> None:
    db = tmp_path / "overload.duckdb"
    config = tmp_path / "small.toml"
    # A tiny queue and one decode slot make 503s certain with a dozen exporters.
    config.write_text(
        "[collector]\nmax_queue_spans = 300\nmax_concurrent_decodes = 1\nwriter_batch_spans = 300\n"
        "decode_workers = 0\n"
    )
    col = CollectorProcess(db, config=config).start()
    peak = {"queue": 0, "rss_kb": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                h = col.get("/healthz").json()
                peak["queue"] = max(peak["queue"], h["queue_spans"])
                assert col.proc is not None
                status = Path(f"/proc/{col.proc.pid}/status").read_text()
                rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
                peak["rss_kb"] = max(peak["rss_kb"], rss)
            except Exception:
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        procs = _start_exporters(col.url, tmp_path, 10, batches=5, batch_size=200, feature="overload")
        codes = [p.wait(180) for p, _ in procs]
    finally:
        stop.set()
        watcher.join(5)
        log_refused = col.get("/healthz").json()
        col.terminate()
        col.kill()
    acked, _failed = _read_results([o for _, o in procs])
    stored = _stored(db, "overload")
    assert acked <= stored.keys(), "an acknowledged span is missing"
    assert set(stored.values()) == {1}
    # Exporters honour Retry-After; one that still gives up after its retries (possible on a
    # loaded machine) dropped its own batch, which the collector never acknowledged.
    assert len(acked) >= 10 * 5 * 200 // 2, f"only {len(acked)} spans got through ({codes})"
    assert len(stored) >= len(acked)
    # The bound holds: at most one request (200 spans) past the limit can be admitted at a time.
    assert peak["queue"] <= 300 + 200
    assert peak["rss_kb"] < 600_000, f"collector RSS peaked at {peak['rss_kb']} kB"
    assert log_refused["ok"] is True
    assert log_refused["refused_requests"] > 0, "the test never overloaded the collector"
