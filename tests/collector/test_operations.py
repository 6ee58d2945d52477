"""Operations: bearer auth, the CLI, rollups against the base table, repricing, clean SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.collector.helpers import REPO, CollectorProcess, genai_attrs, make_request, open_calls, span_dict

pytestmark = [pytest.mark.server, pytest.mark.slow]

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(path: Path, input_price: str) -> Path:
    path.write_text(
        "[collector]\nrollup_interval_s = 1\n\n"
        "[retention]\nrejected_days = 7\n\n"
        "[[pricing.overrides]]\n"
        'model = "acme-negotiated-1"\n'
        "valid_from = 2020-01-01\n"
        f'input_per_mtok = "{input_price}"\n'
        'output_per_mtok = "4.00"\n'
    )
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    tmp = tmp_path_factory.mktemp("ops")
    col = CollectorProcess(
        tmp / "ops.duckdb", env={"SPENDSCOPE_TOKEN": TOKEN}, config=_config(tmp / "c.toml", "1.00")
    )
    col.start()
    try:
        yield col
    finally:
        col.terminate()
        col.kill()


def _get(col: CollectorProcess, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{col.url}{path}", params=params, headers=AUTH, timeout=30)


def _post(col: CollectorProcess, body: bytes) -> httpx.Response:
    return col.post_otlp(body, headers=AUTH)


def test_bearer_token_guards_ingest_and_api(secured: CollectorProcess) -> None:
    body = make_request([span_dict(genai_attrs(**{"spendscope.feature": "auth"}))]).SerializeToString()
    assert secured.post_otlp(body).status_code == 401
    assert secured.post_otlp(body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert secured.get("/api/v1/spend").status_code == 401
    assert secured.get("/healthz").status_code == 200
    assert _post(secured, body).status_code == 200
    assert _get(secured, "/api/v1/spend").status_code == 200


def _spans_for_days(days: list[datetime], per_day: int, feature: str, model: str = "gpt-4o-mini") -> bytes:
    spans = []
    for d in days:
        for i in range(per_day):
            attrs = genai_attrs(
                model,
                **{
                    "gen_ai.usage.input_tokens": 1000 + i,
                    "gen_ai.usage.output_tokens": 50,
                    "spendscope.feature": feature,
                    "spendscope.openai.project": f"p{i % 3}",
                },
            )
            start_ns = int((d + timedelta(hours=i % 24)).timestamp() * 1e9)
            spans.append(span_dict(attrs, start_ns=start_ns, duration_ns=(50 + 37 * i) * 1_000_000))
    return make_request(spans).SerializeToString()


def test_rollups_answer_like_the_base_table(secured: CollectorProcess) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=k) for k in range(2, 12)]
    assert _post(secured, _spans_for_days(days, 30, "rollup")).status_code == 200
    time.sleep(3.5)  # the rollup job runs every second here, and rolls a day once it has settled
    start = (today - timedelta(days=11, hours=-5)).isoformat()  # a partial first day
    end = (today - timedelta(days=1)).isoformat()
    for group_by in ("day,model", "project", "feature,service", ""):
        fast = _get(secured, "/api/v1/spend", start=start, end=end, group_by=group_by).json()
        slow = _get(secured, "/api/v1/spend", start=start, end=end, group_by=group_by, rollup="false").json()
        assert fast["rows"] == slow["rows"], group_by
        assert fast["totals"] == slow["totals"]
    # New calls in a day already rolled up are counted at once (the day is read from calls until re-rolled).
    assert _post(secured, _spans_for_days([days[3]], 5, "rollup")).status_code == 200
    fast = _get(secured, "/api/v1/spend", start=start, end=end, group_by="feature").json()
    slow = _get(secured, "/api/v1/spend", start=start, end=end, group_by="feature", rollup="false").json()
    assert fast["rows"] == slow["rows"]
    # Latency percentiles from the histogram rollup are within one bucket (±2.2%) of the exact ones.
    for group_by in ("model", "day,model", ""):
        approx = _get(secured, "/api/v1/latency", start=start, end=end, group_by=group_by).json()
        exact = _get(secured, "/api/v1/latency", start=start, end=end, group_by=group_by, exact="true").json()
        assert approx["approximate"] is True and exact["approximate"] is False
        assert len(approx["rows"]) == len(exact["rows"]) > 0
        for a, e in zip(approx["rows"], exact["rows"], strict=True):
            assert a["calls"] == e["calls"]
            # Nearest rank on buckets against interpolation between samples: with 30 calls a day the
            # tail percentiles may differ by one sample gap as well as by the bucket width.
            for k, tol in (("p50_s", 0.03), ("p95_s", 0.08), ("p99_s", 0.08)):
                assert abs(a[k] - e[k]) <= tol * e[k] + 0.002, (group_by, k, a[k], e[k])
    whole = _get(
        secured, "/api/v1/spend", start=days[-1].isoformat(), end=today.isoformat(), group_by="feature"
    )
    assert [r["calls"] for r in whole.json()["rows"] if r["feature"] == "rollup"] == [30 * 10 + 5]


def test_cli_spend(secured: CollectorProcess) -> None:
    # Its own calls, so the test does not depend on what other tests in the module stored.
    yesterday = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    assert _post(secured, _spans_for_days([yesterday], 3, "cli")).status_code == 200
    env = {**os.environ, "SPENDSCOPE_TOKEN": TOKEN}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "spendscope",
            "spend",
            "--by",
            "model,day",
            "--since",
            "30d",
            "--api",
            secured.url,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "gpt-4o-mini" in run.stdout and "TOTAL" in run.stdout and "cost_usd" in run.stdout
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "spendscope",
            "spend",
            "--by",
            "feature",
            "--since",
            "30d",
            "--json",
            "--api",
            secured.url,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["group_by"] == ["feature"] and any(r["feature"] == "cli" for r in doc["rows"])
    run = subprocess.run(
        [sys.executable, "-m", "spendscope", "spend", "--by", "colour", "--api", secured.url],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1 and "unknown key 'colour'" in run.stderr


def test_reprice_after_a_price_change_and_sigterm_flush(tmp_path: Path) -> None:
    db = tmp_path / "reprice.duckdb"
    col = CollectorProcess(db, config=_config(tmp_path / "a.toml", "1.00")).start()
    when = datetime.now(UTC) - timedelta(days=3)
    spans = [
        span_dict(
            genai_attrs(
                "acme-negotiated-1", **{"gen_ai.usage.input_tokens": 1_000_000, "spendscope.feature": "acme"}
            ),
            start_ns=int(when.timestamp() * 1e9) + i,
        )
        for i in range(10)
    ]
    assert col.post_otlp(make_request(spans).SerializeToString()).status_code == 200
    params = {"start": (when - timedelta(days=1)).isoformat(), "group_by": "feature"}
    row = next(r for r in col.get("/api/v1/spend", **params).json()["rows"] if r["feature"] == "acme")
    assert Decimal(row["cost_usd"]) == Decimal(10)
    # Send more and stop at once: everything acknowledged must be in the file after SIGTERM.
    more = [span_dict(genai_attrs("gpt-4o-mini", **{"spendscope.feature": "flush"})) for _ in range(200)]
    assert col.post_otlp(make_request(more).SerializeToString()).status_code == 200
    assert col.terminate() == 0
    assert "checkpointed and closed" in col.log.read_text()
    con = open_calls(db)
    assert con.execute("SELECT count(*) FROM calls WHERE feature = 'flush'").fetchone() == (200,)
    con.close()

    col2 = CollectorProcess(db, port=col.port, config=_config(tmp_path / "b.toml", "2.50")).start()
    try:
        row = next(r for r in col2.get("/api/v1/spend", **params).json()["rows"] if r["feature"] == "acme")
        assert Decimal(row["cost_usd"]) == Decimal(10), "stored costs do not change until repriced"
        r = httpx.post(f"{col2.url}/api/v1/prices/reprice", json={"since": params["start"]}, timeout=60)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["ok"] is True and doc["calls_changed"] == 10
        assert Decimal(doc["cost_after_usd"]) - Decimal(doc["cost_before_usd"]) == Decimal(15)
        assert doc["changes"][0]["cost_after"] == "2.5"
        row = next(r for r in col2.get("/api/v1/spend", **params).json()["rows"] if r["feature"] == "acme")
        assert Decimal(row["cost_usd"]) == Decimal(25)
        again = httpx.post(f"{col2.url}/api/v1/prices/reprice", json={"since": params["start"]}, timeout=60)
        assert again.json()["calls_changed"] == 0
    finally:
        col2.terminate()
        col2.kill()
