"""The sync job against the fake over real HTTP, into a real DuckDB file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

pytest.importorskip("duckdb")

from spendscope.collector.store import Store
from spendscope.fake_openai import usage_api
from spendscope.fake_openai.server import FakeOpenAI
from tests.sync.helpers import (
    DAY,
    HOUR,
    NOW,
    db_cost_totals,
    db_usage_totals,
    dump,
    history,
    ledger_cost_totals,
    ledger_usage_totals,
    make_job,
    open_store,
    settings,
)

REPO = Path(__file__).resolve().parents[2]
BACKFILL_HOUR = (NOW - 30 * DAY) // HOUR * HOUR
BACKFILL_DAY = (NOW - 30 * DAY) // DAY * DAY


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    usage_api.reset(fake_openai.ledger)
    fake_openai.set_clock(NOW)
    fake_openai.ledger.extend(history())
    yield fake_openai
    usage_api.reset(fake_openai.ledger)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "sync.duckdb")
    yield s
    s.close()


def _org_requests(fake: FakeOpenAI, endpoint: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in fake.requests if r.path.endswith(endpoint)]


def _assert_matches_ledger(fake: FakeOpenAI, store: Store) -> None:
    rows = fake.ledger.rows()
    for ep in ("completions", "embeddings"):
        assert db_usage_totals(store, ep) == ledger_usage_totals(rows, ep, BACKFILL_HOUR), ep
    assert db_cost_totals(store) == ledger_cost_totals(rows, BACKFILL_DAY)


def test_sync_equals_ledger_and_second_run_changes_nothing(fake: FakeOpenAI, store: Store) -> None:
    job = make_job(store, settings(fake.base_url, fake.admin_key))
    first = job.run()
    assert first.status == "ok", first.error
    _assert_matches_ledger(fake, store)
    d = first.as_dict()
    completions = next(e for e in d["endpoints"] if e["endpoint"] == "completions")
    # 30 days of hourly buckets need 5 pages of 168; every request asked for the right bucket width.
    assert completions["pages"] == 5 and completions["window_start"] == BACKFILL_HOUR
    assert completions["rows_inserted"] > 0
    reqs = _org_requests(fake, "/usage/completions")
    assert all(q["bucket_width"] == ["1h"] and q["limit"] == ["168"] for q in reqs)
    assert set(reqs[0]["group_by[]"]) == {"project_id", "api_key_id", "model", "batch", "service_tier"}
    costs_req = _org_requests(fake, "/organization/costs")[0]
    assert costs_req["bucket_width"] == ["1d"] and set(costs_req["group_by[]"]) == {
        "project_id",
        "line_item",
        "api_key_id",
    }
    # The vector store's bill arrives through the Costs API even though no usage endpoint prices it.
    cur = store.cursor()
    vs = cur.execute("SELECT sum(amount) FROM cost_buckets WHERE line_item = 'vector store storage'")
    assert vs.fetchone() == (Decimal("0.1"),)
    status = dict(
        cur.execute(
            "SELECT service_tier = 'flex' AND NOT batch, list(DISTINCT pricing_status) FROM usage_buckets "
            "WHERE endpoint = 'completions' GROUP BY ALL"
        ).fetchall()
    )
    cur.close()
    # Priced with our own table; it has no flex price for these models (batch wins): unpriced, not $0.
    assert status == {False: ["priced"], True: ["unpriced"]}
    before = dump(store)

    n_before = len(fake.requests)
    second = job.run()
    assert second.status == "ok", second.error
    d2 = second.as_dict()
    assert (d2["rows_inserted"], d2["rows_updated"], d2["rows_deleted"]) == (0, 0, 0)
    assert dump(store) == before
    # Later runs re-read only the trailing 48 hours.
    new = [
        parse_qs(urlparse("?" + r.query).query)
        for r in fake.requests[n_before:]
        if r.path.endswith("/usage/completions")
    ]
    assert [q["start_time"] for q in new] == [[str((NOW - 48 * HOUR) // HOUR * HOUR)]]
    costs2 = next(e for e in d2["endpoints"] if e["endpoint"] == "costs")
    assert costs2["window_start"] == (NOW - 48 * HOUR) // DAY * DAY

    cur = store.cursor()
    runs = cur.execute(
        "SELECT run_id, status, pages, rows_read, error, duration_s FROM sync_runs ORDER BY run_id"
    ).fetchall()
    cur.close()
    assert [(r[0], r[1]) for r in runs] == [(1, "ok"), (2, "ok")]
    assert runs[0][2] == d["pages"] and runs[0][3] == d["rows_read"] and runs[0][5] is not None


def test_revision_of_recent_bucket_is_picked_up(fake: FakeOpenAI, store: Store) -> None:
    job = make_job(store, settings(fake.base_url, fake.admin_key))
    assert job.run().status == "ok"
    rows = fake.ledger.rows()
    recent = next(
        i
        for i, r in enumerate(rows)
        if r.endpoint == "chat.completions" and NOW - r.ts < 24 * HOUR and r.billed
    )
    fake.ledger.revise(recent, output_tokens=rows[recent].output_tokens + 1000)
    result = job.run()
    assert result.status == "ok"
    d = result.as_dict()
    assert d["rows_updated"] >= 2  # the usage row and the costs "output" line item
    _assert_matches_ledger(fake, store)

    # Revisions older than the trailing window are not re-read (that is the trade-off of the window).
    old = next(
        i for i, r in enumerate(rows) if r.endpoint == "chat.completions" and 10 * DAY < NOW - r.ts < 20 * DAY
    )
    fake.ledger.revise(old, output_tokens=rows[old].output_tokens + 7)
    assert job.run().as_dict()["rows_updated"] == 0


def test_429_and_503_in_the_middle_of_pagination_are_retried(fake: FakeOpenAI, store: Store) -> None:
    fake.inject(
        {
            "match": {"path": "/v1/organization/usage/completions", "nth": 3, "times": 1},
            "action": {"status": 429, "code": "rate_limit_exceeded", "retry_after_ms": "30"},
        }
    )
    fake.inject(
        {
            "match": {"path": "/v1/organization/usage/embeddings", "nth": 2, "times": 1},
            "action": {"status": 503, "retry_after": "0"},
        }
    )
    job = make_job(store, settings(fake.base_url, fake.admin_key))
    result = job.run()
    assert result.status == "ok", result.error
    reports = {e.endpoint: e for e in result.endpoints}
    assert reports["completions"].retries == 1 and reports["completions"].pages == 5
    assert reports["completions"].requests == 6
    assert reports["embeddings"].retries == 1
    _assert_matches_ledger(fake, store)
    # The failed page was asked again with the same cursor.
    pages = [q.get("page") for q in _org_requests(fake, "/usage/completions")]
    assert pages[2] == pages[3] and pages[2] is not None


def test_invalid_admin_key_is_a_clear_recorded_error(fake: FakeOpenAI, store: Store) -> None:
    bad = "sk-proj-not-an-admin-key-0000"
    job = make_job(store, settings(fake.base_url, bad))
    result = job.run()
    assert result.status == "error" and result.auth_failed
    assert result.error is not None and "refused the admin key" in result.error and "401" in result.error
    assert bad not in result.error
    assert len(result.endpoints) == 1  # no point asking the other endpoints with the same key
    cur = store.cursor()
    row = cur.execute("SELECT status, error, errors FROM sync_runs").fetchone()
    cur.close()
    assert row is not None and row[0] == "error" and "refused the admin key" in row[1] and row[2] == 1


def test_no_admin_key_is_recorded(store: Store) -> None:
    job = make_job(store, settings("http://127.0.0.1:9/v1", ""))
    result = job.run()
    assert result.status == "error" and "OPENAI_ADMIN_KEY" in (result.error or "")


_CHILD = """
import sys
from spendscope.collector.components import migrate
from spendscope.collector.store import Store
from tests.sync.helpers import make_job, settings
store = Store(sys.argv[1]); migrate(store)
job = make_job(store, settings(sys.argv[2], sys.argv[3]))
job.run()
"""


def test_crash_mid_run_resumes_without_gaps_or_double_counting(fake: FakeOpenAI, tmp_path: Path) -> None:
    hold = threading.Event()
    st = usage_api.settings_for(fake.ledger)
    fault = usage_api.Fault("/usage/completions", nth=3, hold=hold, hold_s=30)
    st.faults.append(fault)
    db = tmp_path / "crash.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), fake.base_url, fake.admin_key], cwd=REPO, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while fault.fired == 0 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        assert fault.fired == 1, "the child never reached page 3"
        child.kill()  # a real crash: no cleanup, no finally blocks
        child.wait(10)
    finally:
        hold.set()
        if child.poll() is None:
            child.kill()
            child.wait(10)
    st.faults.clear()

    store = open_store(db)
    try:
        cur = store.cursor()
        state = cur.execute(
            "SELECT epoch(resume_from)::BIGINT FROM sync_state WHERE endpoint = 'usage/completions'"
        ).fetchone()
        committed = cur.execute(
            "SELECT count(*), max(bucket_start_s) FROM usage_buckets WHERE endpoint = 'completions'"
        ).fetchone()
        cur.close()
        assert state is not None and state[0] == BACKFILL_HOUR + 2 * 168 * HOUR  # two pages were committed
        # What the two pages held is stored, nothing after them.
        assert committed is not None and committed[0] > 0 and committed[1] < state[0]
        n_before = len(fake.requests)
        result = make_job(store, settings(fake.base_url, fake.admin_key)).run()
        assert result.status == "ok", result.error
        completions = next(e for e in result.endpoints if e.endpoint == "completions")
        assert completions.resumed and completions.window_start == state[0]
        starts = [
            parse_qs(r.query)["start_time"]
            for r in fake.requests[n_before:]
            if r.path.endswith("/usage/completions")
        ]
        assert starts[0] == [str(state[0])]
        # Embeddings and costs were never reached by the crashed run: they backfill from scratch.
        _assert_matches_ledger(fake, store)
        cur = store.cursor()
        runs = cur.execute("SELECT run_id, status, error FROM sync_runs ORDER BY run_id").fetchall()
        cur.close()
        assert [r[1] for r in runs] == ["interrupted", "ok"] and "resumes" in runs[0][2]
    finally:
        store.close()


def test_json_of_result_is_serializable(fake: FakeOpenAI, store: Store) -> None:
    result = make_job(store, settings(fake.base_url, fake.admin_key, endpoints=("costs",))).run()
    doc = json.loads(json.dumps(result.as_dict()))
    assert doc["ok"] is True and doc["endpoints"][0]["endpoint"] == "costs"
