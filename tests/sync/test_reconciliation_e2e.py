"""End to end: an instrumented app and uninstrumented traffic on the fake, a real collector syncing
the fake's Usage and Costs API, and the capture rate finance reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("duckdb")
pytest.importorskip("starlette")
pytest.importorskip("openai")

from spendscope.fake_openai import usage_api
from spendscope.fake_openai.server import FakeOpenAI
from spendscope.pricing import PriceTable
from tests.collector.helpers import CollectorProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini"
INSTRUMENTED, UNINSTRUMENTED_A, UNINSTRUMENTED_B = 6, 4, 3
KEY_B = "sk-fake-proj-b-0123456789abcdef0123456789ab"

_APP = """
import sys
import spendscope
spendscope.instrument(service_name="checkout")
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
messages = [{"role": "user", "content": "the same question"}]
for i in range(int(sys.argv[3])):
    client.chat.completions.create(model=sys.argv[4], messages=messages)
"""


def _fake_prices() -> dict[str, dict[str, Decimal]]:
    """The fake bills with its own dict; for this test it must agree with our table."""
    row = next(
        r
        for r in PriceTable.default().rows(datetime.now(UTC))
        if r["model"] == MODEL and r["tier"] == "default"
    )
    price = {
        "input": Decimal(row["input_per_mtok"]),
        "cached_input": Decimal(row["cached_input_per_mtok"]),
        "output": Decimal(row["output_per_mtok"]),
    }
    return {"gpt-4o-mini-2024-07-18": price, MODEL: price}


def _uninstrumented(fake: FakeOpenAI, key: str, n: int) -> None:
    # urllib, not httpx: an app spendscope does not see.
    body = json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": "the same question"}]}
    ).encode()
    for _ in range(n):
        req = urllib.request.Request(
            f"{fake.base_url}/chat/completions",
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200


@pytest.fixture(scope="module")
def world(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    fake = fake_openai_server
    fake.reset()
    st = usage_api.reset(fake.ledger)
    st.prices = _fake_prices()
    fake.projects[KEY_B] = "proj_b"
    tmp = Path(tmp_path_factory.mktemp("recon"))
    config = tmp / "spendscope.toml"
    config.write_text('[sync]\non_start = false\ninterval = "1d"\nbucket_width = "1h"\n')
    env = {"OPENAI_ADMIN_KEY": fake.admin_key, "SPENDSCOPE_OPENAI_BASE_URL": fake.base_url}
    collector = CollectorProcess(tmp / "spendscope.duckdb", env=env, config=config).start()
    try:
        app_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        subprocess.run(
            [sys.executable, "-c", _APP, fake.base_url, fake.api_key, str(INSTRUMENTED), MODEL],
            env=app_env,
            cwd=REPO,
            check=True,
            timeout=60,
        )
        _uninstrumented(fake, fake.api_key, UNINSTRUMENTED_A)
        _uninstrumented(fake, KEY_B, UNINSTRUMENTED_B)
        now = datetime.now(UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        window = {
            "start": (day - timedelta(days=1)).isoformat(),
            "end": (day + timedelta(days=2)).isoformat(),
        }
        deadline = time.monotonic() + 30
        calls = 0
        while time.monotonic() < deadline:
            doc = collector.get("/api/v1/spend", **window, group_by="model").json()
            calls = doc["totals"].get("calls", 0)
            if calls >= INSTRUMENTED:
                break
            time.sleep(0.2)
        assert calls == INSTRUMENTED, "the instrumented app's spans did not reach the collector"
        yield {"fake": fake, "collector": collector, "window": window, "tmp": tmp}
    finally:
        try:
            collector.terminate()
        finally:
            collector.kill()
            fake.projects.pop(KEY_B, None)
            usage_api.reset(fake.ledger)


def test_sync_then_capture_rate_matches_instrumented_share(world: dict[str, Any]) -> None:
    collector: CollectorProcess = world["collector"]
    r = httpx.post(f"{collector.url}/api/v1/sync", json={}, timeout=120)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["ok"] is True and doc["rows_read"] > 0 and doc["errors"] == 0
    assert {e["endpoint"] for e in doc["endpoints"]} >= {"completions", "costs"}

    rec = collector.get("/api/v1/reconciliation", **world["window"], group_by="project").json()
    rows = {x["project"]: x for x in rec["rows"]}
    a, b = rows[world["fake"].project], rows["proj_b"]
    # Every request was identical, so the instrumented share of project A's bill is 6 of 10.
    assert Decimal(a["capture_rate"]) == Decimal(INSTRUMENTED) / (INSTRUMENTED + UNINSTRUMENTED_A)
    assert Decimal(a["tracked_usd"]) > 0 and Decimal(a["billed_usd"]) > Decimal(a["tracked_usd"])
    assert Decimal(a["untracked_usd"]) == Decimal(a["billed_usd"]) - Decimal(a["tracked_usd"])
    assert b["tracked_usd"] == "0" and b["capture_rate"] == "0" and Decimal(b["billed_usd"]) > 0
    total = INSTRUMENTED + UNINSTRUMENTED_A + UNINSTRUMENTED_B
    assert Decimal(rec["totals"]["capture_rate"]) == (Decimal(INSTRUMENTED) / total).quantize(
        Decimal("0.000001")
    )
    # Usage priced with our table agrees with the bill, since the fake bills at the same prices.
    assert Decimal(a["estimated_usd"]) == Decimal(a["billed_usd"])

    by_day = collector.get("/api/v1/reconciliation", **world["window"], group_by="day").json()
    assert sum(Decimal(x["billed_usd"]) for x in by_day["rows"]) == Decimal(rec["totals"]["billed_usd"])

    # Token comparison per model: spans saw 6 requests, the Usage API 13.
    by_model = collector.get("/api/v1/reconciliation", **world["window"], group_by="model").json()
    (m,) = [x for x in by_model["rows"] if x["usage_requests"]]
    assert m["calls"] == INSTRUMENTED and m["usage_requests"] == total
    assert m["usage_input_tokens"] * INSTRUMENTED == m["tracked_input_tokens"] * total
    assert m["billed_usd"] is None and m["capture_rate"] is None
    assert Decimal(m["token_capture_rate"]) == (Decimal(INSTRUMENTED) / total).quantize(Decimal("0.000001"))

    usage = collector.get("/api/v1/usage", **world["window"], group_by="project,api_key").json()["rows"]
    assert sum(x["requests"] for x in usage) == total
    costs = collector.get("/api/v1/costs", **world["window"], group_by="line_item").json()["rows"]
    assert {x["line_item"] for x in costs} >= {
        "gpt-4o-mini-2024-07-18, input",
        "gpt-4o-mini-2024-07-18, output",
    }

    runs = collector.get("/api/v1/sync/runs").json()["rows"]
    assert runs[0]["status"] == "ok" and runs[0]["trigger"] == "manual" and runs[0]["pages"] == doc["pages"]


def test_cli_sync_and_bad_requests(world: dict[str, Any]) -> None:
    collector: CollectorProcess = world["collector"]

    def sync() -> str:
        out = subprocess.run(
            [sys.executable, "-m", "spendscope", "sync", "--api", collector.url],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if not k.startswith("SPENDSCOPE_")},
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert sync().startswith("sync ok")
    # A second run over the same window reads the same buckets and changes nothing.
    again = sync()
    assert again.startswith("sync ok") and "0 inserted, 0 updated, 0 deleted" in again
    bad = collector.get("/api/v1/reconciliation", group_by="user")
    assert bad.status_code == 400 and "group_by" in bad.json()["error"]
    assert collector.get("/api/v1/reconciliation", start="2026-03-02", end="2026-03-01").status_code == 400


def test_refused_admin_key_answers_non_2xx(world: dict[str, Any]) -> None:
    fake: FakeOpenAI = world["fake"]
    tmp: Path = world["tmp"]
    env = {"OPENAI_ADMIN_KEY": "sk-proj-not-admin-0000000000", "SPENDSCOPE_OPENAI_BASE_URL": fake.base_url}
    config = tmp / "bad.toml"
    config.write_text("[sync]\non_start = false\n")
    collector = CollectorProcess(tmp / "bad.duckdb", env=env, config=config).start()
    try:
        r = httpx.post(f"{collector.url}/api/v1/sync", json={}, timeout=60)
        assert r.status_code == 502
        doc = r.json()
        assert doc["ok"] is False and "refused the admin key" in doc["error"]
        runs = collector.get("/api/v1/sync/runs").json()["rows"]
        assert runs[0]["status"] == "error" and "refused the admin key" in runs[0]["error"]
    finally:
        try:
            collector.terminate()
        finally:
            collector.kill()
