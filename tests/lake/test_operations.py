"""Operating a lake replica: PostgreSQL stopped under load, clear start-up errors, status and compaction
from the command line, and the settings' parsing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spendscope.collector.config import ConfigError, load_config
from tests.collector.helpers import REPO, free_port
from tests.lake.helpers import (
    lake_config,
    lake_status,
    make_batch,
    replica,
    spend_totals,
    wait_for,
    wait_settled,
)
from tests.lake.postgres import Postgres, start_postgres

pytestmark = [pytest.mark.server]


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Postgres]:
    """A server of this module's own: it is stopped and started again here."""
    server = start_postgres(Path(tempfile.mkdtemp(prefix="ssq-")) / "pg")
    try:
        yield server
    finally:
        server.close()


@pytest.mark.slow
def test_postgres_stopped_and_started_under_load(own_postgres: Postgres, tmp_path: Path) -> None:
    config = lake_config(
        tmp_path / "lake.toml", own_postgres.catalog(own_postgres.new_database()), tmp_path / "d"
    )
    proc = replica(tmp_path, "solo", config).start()
    service = "lake-pg-outage"
    sent = 0
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        nonlocal sent
        while not stop.is_set():
            body, _ = make_batch(500, service=service)
            code = proc.post_otlp(body).status_code
            statuses.append(code)
            if code == 200:
                sent += 500
            time.sleep(0.05)

    try:
        wait_for(lambda: lake_status(proc)["leader"], 40, "the replica to lead")
        t = threading.Thread(target=load)
        t.start()
        time.sleep(1.5)
        own_postgres.stop()
        time.sleep(4)
        during = sent
        down = proc.get("/api/v1/lake").json()
        own_postgres.restart()
        time.sleep(1.5)
        stop.set()
        t.join(60)
        assert set(statuses) == {200}, "ingest is acknowledged locally while the catalog is down"
        assert sent > during > 0
        assert down["unshipped_rows"] > 0
        wait_settled([proc], timeout=90)
        got = wait_for(
            lambda: (x := spend_totals(proc, service, group_by="service"))["calls"] == sent and x,
            60,
            f"{sent} calls after the catalog came back",
        )
        assert got["calls"] == sent
    finally:
        proc.terminate()


def _collector(
    tmp: Path, config: Path, replica_name: str, db: str = "x.duckdb"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SPENDSCOPE_")}
    env["SPENDSCOPE_REPLICA"] = replica_name
    return subprocess.run(
        [sys.executable, "-m", "spendscope", "collector", "--port", str(free_port()), "--db", str(tmp / db),
         "--config", str(config)],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
    )  # fmt: skip


def test_a_bad_catalog_string_stops_the_start_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[lake]\ncatalog = "postgresql://db/spendscope"\ndata_path = "{tmp_path}/d/"\n')
    out = _collector(tmp_path, cfg, "r1")
    assert out.returncode == 2
    assert "c.toml: lake.catalog: must start with 'postgres:' followed by libpq key=value pairs" in out.stderr


def test_a_data_path_it_cannot_write_stops_the_start(tmp_path: Path, postgres: Postgres) -> None:
    (tmp_path / "file").write_text("not a directory")
    cfg = lake_config(tmp_path / "c.toml", postgres.catalog("postgres"), tmp_path / "file" / "lake")
    out = _collector(tmp_path, cfg, "r1")
    assert out.returncode == 2
    assert (
        "is not a directory this collector can write" in out.stderr and str(tmp_path / "file") in out.stderr
    )


@pytest.mark.slow
def test_two_live_replicas_with_one_name_and_the_cli(postgres: Postgres, tmp_path: Path) -> None:
    cfg = lake_config(tmp_path / "c.toml", postgres.catalog(postgres.new_database()), tmp_path / "d")
    first = replica(tmp_path, "twin", cfg).start()
    try:
        out = _collector(tmp_path, cfg, "twin", db="other.duckdb")
        assert out.returncode == 2
        assert "replica name 'twin' is already in use by a live collector" in out.stderr
        for _ in range(3):
            body, _ = make_batch(300, service="lake-cli")
            assert first.post_otlp(body).status_code == 200
            wait_settled([first])
        cli = [sys.executable, "-m", "spendscope", "lake"]
        status = subprocess.run(
            [*cli, "status", "--json", "--api", first.url],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        doc = json.loads(status.stdout)
        assert {
            "replica",
            "leader",
            "unshipped_rows",
            "last_ship_at",
            "replicas",
            "files",
            "last_compaction_at",
        } <= set(doc)
        assert doc["replica"] == "twin" and doc["leader"] is True and doc["unshipped_rows"] == 0
        assert doc["replicas"][0]["replica"] == "twin" and doc["replicas"][0]["shipped_rows"] == 900
        assert doc["files"] >= 3
        assert first.get("/healthz").json()["lake"]["replica"] == "twin"
        text = subprocess.run(
            [*cli, "status", "--api", first.url], check=True, capture_output=True, text=True, timeout=60
        )
        assert "twin  (leader)" in text.stdout
        compact = subprocess.run(
            [*cli, "compact", "--json", "--api", first.url],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        result = json.loads(compact.stdout)
        assert result["files_after"] < result["files_before"]
        after = lake_status(first)
        assert after["last_compaction_at"] is not None and after["files"] == result["files_after"]
        assert spend_totals(first, "lake-cli", group_by="service")["calls"] == 900
    finally:
        first.terminate()


def test_settings_environment_overrides_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[lake]\ncatalog = "postgres:dbname=a host=db"\ndata_path = "/x"\nreplica = "r-1"\n')
    s = load_config(f, env={}).lake
    assert s is not None and s.data_path == "/x/" and s.replica == "r-1" and s.ship_interval_s == 10
    env = {
        "SPENDSCOPE_LAKE_CATALOG": "postgres:dbname=b host=/run/pg user=u password='p w'",
        "SPENDSCOPE_LAKE_DATA_PATH": "s3://bucket/lake",
        "SPENDSCOPE_REPLICA": "collector-b",
    }
    s = load_config(f, env=env).lake
    assert s is not None and s.replica == "collector-b" and s.data_path == "s3://bucket/lake/"
    assert "password=***" in s.redacted() and "p w" not in s.redacted()
    assert "connect_timeout=5" in s.libpq
    assert load_config(None, env={}).lake is None  # no [lake]: one collector, one file
    only_env = load_config(None, env={**env, "SPENDSCOPE_REPLICA": ""}).lake
    assert only_env is not None and only_env.replica is None  # the server names it host:port
    for body, message in (
        (
            'catalog = "postgres:dbname=a"\ndata_path = "/x"\nship_interval_s = 0.5',
            "ship_interval_s: must be >= 1",
        ),
        (
            'catalog = "postgres:dbname=a bogus=1"\ndata_path = "/x"',
            "lake.catalog: unknown libpq key 'bogus'",
        ),
        ('catalog = "postgres:dbname"\ndata_path = "/x"', "lake.catalog: expected key=value"),
        ('catalog = "postgresql://db/x"\ndata_path = "/x"', "lake.catalog: must start with 'postgres:'"),
        ('data_path = "/x"', "lake.catalog"),
        ('catalog = "postgres:dbname=a"', "lake.data_path"),
        ('catalog = "postgres:dbname=a"\ndata_path = "/x"\nreplica = "a b"', "lake.replica: must be 1-100"),
        ('catalog = "postgres:dbname=a"\ndata_path = "/x"\ninterval = 1', "lake.interval: unknown key"),
    ):
        f.write_text(f"[lake]\n{body}\n")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(f, env={})


def test_a_collector_without_a_lake_says_so(tmp_path: Path) -> None:
    from tests.collector.helpers import CollectorProcess

    proc = CollectorProcess(tmp_path / "plain.duckdb").start()
    try:
        doc = proc.get("/api/v1/lake").json()
        assert doc["lake"] is False and doc["leader"] is True and doc["unshipped_rows"] == 0
        assert "lake" not in proc.get("/healthz").json()
        assert (
            __import__("httpx").post(f"{proc.url}/api/v1/lake/compact", json={}, timeout=30).status_code
            == 404
        )
        out = subprocess.run(
            [sys.executable, "-m", "spendscope", "lake", "status", "--api", proc.url],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "this collector has no lake" in out.stdout
    finally:
        proc.terminate()


@pytest.mark.slow
def test_answers_count_each_row_once_while_it_ships(postgres: Postgres, tmp_path: Path) -> None:
    """Before, during and after a shipment (and before its local rows are let go at the next round),
    the routed answer and the calls-only answer both count each acknowledged row once."""
    config = lake_config(
        tmp_path / "lake.toml", postgres.catalog(postgres.new_database()), tmp_path / "d", interval_s=3
    )
    proc = replica(tmp_path, "steady", config).start()
    try:
        body, _ = make_batch(50, service="lake-steady")
        assert proc.post_otlp(body).status_code == 200
        shipped_at: float | None = None
        deadline = time.monotonic() + 60
        # Until two ship rounds after the shipment: its rows are let go locally at the next round.
        while time.monotonic() < deadline and (shipped_at is None or time.monotonic() < shipped_at + 7):
            routed = spend_totals(proc, "lake-steady", group_by="service")["calls"]
            raw = spend_totals(proc, "lake-steady", group_by="service", rollup="false")["calls"]
            assert (routed, raw) == (50, 50)
            if shipped_at is None and lake_status(proc)["unshipped_rows"] == 0:
                shipped_at = time.monotonic()
            time.sleep(0.2)
        assert shipped_at is not None, "the rows were never shipped"
    finally:
        proc.terminate()
