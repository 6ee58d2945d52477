"""Alerts inside a real collector process: start-up errors, the API contract, the CLI test command
and an insufficient_quota span turning into a delivered notification."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict

from .helpers import Receiver, start_receiver

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.close()


def write_config(path: Path, url: str) -> Path:
    path.write_text(
        """
[alerts]
interval = "1s"

[alerts.channels.hook]
type = "webhook"
url_env = "E2E_HOOK_URL"

[[alerts.rules]]
name = "quota"
kind = "insufficient_quota"
window = "15m"
channels = ["hook"]
"""
    )
    return path


def test_invalid_rule_stops_start_with_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[alerts.rules]]\nname = "b"\nkind = "budget"\nperiod = "fortnight"\namount_usd = "5"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spendscope",
            "collector",
            "--port",
            "0",
            "--db",
            str(tmp_path / "x.duckdb"),
            "--config",
            str(cfg),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert f"{cfg}: alerts.rules[0] (b).period: must be day, week or month" in proc.stderr


def test_alerts_in_a_running_collector(tmp_path: Path, receiver: Receiver) -> None:
    cfg = write_config(tmp_path / "c.toml", receiver.url)
    col = CollectorProcess(
        tmp_path / "c.duckdb", config=cfg, env={"E2E_HOOK_URL": f"{receiver.url}/ok/e2e/hook"}
    ).start()
    try:
        assert col.get("/api/v1/alerts", state="all").json() == {"rows": []}
        status = col.get("/api/v1/alerts/status").json()
        assert status["rules"] == [
            {"name": "quota", "kind": "insufficient_quota", "severity": "critical", "channels": ["hook"]}
        ]
        assert status["channels"] == [{"name": "hook", "type": "webhook"}]
        assert col.get("/api/v1/alerts", state="bogus").status_code == 400

        out = subprocess.run(
            [sys.executable, "-m", "spendscope", "alerts", "test", "quota", "--api", col.url],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert out.returncode == 0, out.stderr
        assert "queued to: hook" in out.stdout
        got = receiver.wait_for(lambda g: any(x.body.get("event") == "test" for x in g))
        assert got[-1].body["rule"] == "quota"
        missing = subprocess.run(
            [sys.executable, "-m", "spendscope", "alerts", "test", "nope", "--api", col.url],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert missing.returncode == 1 and "no rule named 'nope'" in missing.stderr

        attrs = genai_attrs(**{"http.response.status_code": 429, "error.type": "insufficient_quota"})
        resp = col.post_otlp(make_request([span_dict(attrs, error=True)]).SerializeToString())
        assert resp.status_code == 200
        receiver.wait_for(lambda g: any(x.body.get("event") == "firing" for x in g), timeout=20)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = col.get("/api/v1/alerts", state="firing").json()["rows"]
            if rows and rows[0]["deliveries"]["delivered"] == 1:
                break
            time.sleep(0.2)
        [row] = rows
        assert row["rule"] == "quota" and row["state"] == "firing" and row["severity"] == "critical"
        assert row["started_at"] and row["resolved_at"] is None and row["last_notified_at"]
        for key in ("scope", "value", "threshold", "message"):
            assert key in row
        deliveries = httpx.get(f"{col.url}/api/v1/alerts/deliveries", timeout=10).json()["rows"]
        assert {d["event"] for d in deliveries} == {"test", "firing"}
        listed = subprocess.run(
            [sys.executable, "-m", "spendscope", "alerts", "list", "--api", col.url],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert listed.returncode == 0 and listed.stdout.startswith("firing    critical quota since")
        silence = httpx.post(
            f"{col.url}/api/v1/alerts/silences", json={"rule": "quota", "duration": "1h"}, timeout=10
        )
        assert silence.status_code == 201
        assert col.get("/api/v1/alerts", state="firing").json()["rows"][0]["silenced"] is True
    finally:
        assert col.terminate() == 0
