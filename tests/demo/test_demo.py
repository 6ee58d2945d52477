"""`spendscope demo --duration` headless: spend, rate limits, reconciliation and a fired alert appear."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("duckdb")

import httpx

from tests.collector.helpers import free_port

ALL_TIME = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}


def _get(url: str, **params: str) -> Any:
    response = httpx.get(url, params=params, timeout=10)
    response.raise_for_status()
    return response.json()


def test_demo_runs_headless_and_everything_shows_up(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spendscope", "demo", "--duration", "70", "--no-dashboard",
         "--port", str(port), "--dir", str(tmp_path / "demo"), "--rate", "6"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    seen: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 65
        while time.monotonic() < deadline and len(seen) < 4:
            time.sleep(2)
            try:
                spend = _get(f"{api}/spend", group_by="service", **ALL_TIME)
                if spend["rows"] and "spend" not in seen:
                    seen["spend"] = spend
                limits = _get(f"{api}/ratelimits")
                if limits["rows"] and "ratelimits" not in seen:
                    seen["ratelimits"] = limits
                if "spend" in seen:
                    # Sync now, then read: billed and tracked describe the same moment (the
                    # scheduled sync may have run when almost nothing was billed yet).
                    httpx.post(f"{api}/sync", json={}, timeout=60).raise_for_status()
                    recon = _get(f"{api}/reconciliation", group_by="day", **ALL_TIME)
                    if any(row.get("billed_usd") not in (None, "0") for row in recon["rows"]):
                        seen["reconciliation"] = recon
                alerts = _get(f"{api}/alerts", state="all")
                if alerts["rows"]:
                    seen["alerts"] = alerts
            except httpx.HTTPError:
                continue
        # The demo stops itself after its duration; on a loaded machine its start and stop take longer.
        assert proc.wait(180) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the demo and the collector, fake and apps it started
            proc.wait(10)
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert set(seen) == {"spend", "ratelimits", "reconciliation", "alerts"}, (sorted(seen), output[-3000:])
    services = {row["service"] for row in seen["spend"]["rows"]}
    assert {"checkout-api", "support-bot", "docs-indexer"} <= services
    assert "legacy-reports" not in services  # the uninstrumented service is billed, not tracked
    rates = [row["capture_rate"] for row in seen["reconciliation"]["rows"] if row.get("capture_rate")]
    assert rates and all(0 < float(rate) < 1 for rate in rates)
    assert "demo stopped." in output
