"""Prices from the bill on two replicas of one lake: the leader syncs the fake's costs; a replica that
does not sync learns the bill's prices from the lake, so the unknown model's calls it received are
priced (origin ``bill``) and so are the ones it receives afterwards, and an outside reader of the
lake sees them priced once shipped."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from spendscope.collector.lake.extensions import load_extensions
from spendscope.fake_openai import usage_api
from spendscope.fake_openai.server import FakeOpenAI
from tests.collector.helpers import CollectorProcess
from tests.lake.helpers import lake_config, lake_status, replica, wait_for, wait_settled
from tests.lake.postgres import Postgres
from tests.sync.helpers import run_app

pytestmark = [pytest.mark.server, pytest.mark.slow]

NEW = "gpt-9-lake"  # no price table knows it
NEW_PRICE = {"input": Decimal("1.10"), "output": Decimal("4.40")}
SYNC = (
    '[sync]\non_start = false\ninterval = "1d"\nbucket_width = "1h"\nendpoints = ["completions", "costs"]\n'
)
WINDOW = {"start": "2020-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def pair(
    postgres: Postgres, fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, CollectorProcess]]]:
    fake = fake_openai_server
    fake.reset()
    usage_api.reset(fake.ledger).prices = {NEW: NEW_PRICE}
    tmp = Path(tmp_path_factory.mktemp("lakebill"))
    catalog = postgres.catalog(postgres.new_database())
    config = lake_config(tmp / "lake.toml", catalog, tmp / "data", extra=SYNC)
    env = {"OPENAI_ADMIN_KEY": fake.admin_key, "SPENDSCOPE_OPENAI_BASE_URL": fake.base_url}
    procs = {name: replica(tmp, name, config, env=env) for name in "ab"}
    try:
        for p in procs.values():
            p.start()
        wait_for(lambda: sum(bool(lake_status(p)["leader"]) for p in procs.values()) == 1, 40, "a leader")
        yield catalog, procs
    finally:
        for p in procs.values():
            try:
                p.terminate()
            except Exception:
                p.kill()
        usage_api.reset(fake.ledger)


def _calls(proc: CollectorProcess, service: str) -> list[dict[str, Any]]:
    rows = proc.get("/api/v1/calls", **WINDOW, limit="1000").json()["rows"]
    return [r for r in rows if r["service"] == service]


def _all_from_bill(proc: CollectorProcess, service: str, n: int) -> list[dict[str, Any]] | None:
    rows = _calls(proc, service)
    ok = len(rows) == n and all((r["pricing_status"], r["price_origin"]) == ("priced", "bill") for r in rows)
    return rows if ok else None


def _lake_calls(catalog: str, service: str) -> list[tuple[str, str | None, Decimal | None]]:
    con = duckdb.connect()
    try:
        load_extensions(con)
        con.execute(f"ATTACH 'ducklake:postgres:{catalog.removeprefix('postgres:')}' AS lake (READ_ONLY)")
        rows = con.execute(
            "SELECT pricing_status, price_origin, cost_usd FROM lake.calls WHERE service = ?", [service]
        ).fetchall()
        return [(str(r[0]), r[1], r[2]) for r in rows]
    finally:
        con.close()


def test_a_replica_that_does_not_sync_prices_from_the_leaders_bill(
    pair: tuple[str, dict[str, CollectorProcess]], fake_openai_server: FakeOpenAI
) -> None:
    catalog, procs = pair
    leader = next(p for p in procs.values() if lake_status(p)["leader"])
    follower = next(p for p in procs.values() if p is not leader)
    run_app(fake_openai_server, follower, NEW, 4, "lake-bill")
    before = wait_for(lambda: len(rows := _calls(follower, "lake-bill")) == 4 and rows, 30, "calls")
    assert {r["pricing_status"] for r in before} == {"unpriced"}

    r = httpx.post(f"{leader.url}/api/v1/sync", json={}, timeout=120)
    assert r.status_code == 200 and r.json()["ok"], r.text

    # Both replicas answer the follower's calls priced from the bill, at amount ÷ quantity.
    for p in (follower, leader):
        rows = wait_for(lambda p=p: _all_from_bill(p, "lake-bill", 4), 30, f"{p.url}: calls priced")
        for x in rows:
            tokens = Decimal(x["input_tokens"]), Decimal(x["output_tokens"])
            own = (tokens[0] * NEW_PRICE["input"] + tokens[1] * NEW_PRICE["output"]) / 10**6
            assert Decimal(x["cost_usd"]) == own
    # The follower learnt the bill: what it receives now is priced at ingest.
    run_app(fake_openai_server, follower, NEW, 2, "lake-bill-later")
    wait_for(lambda: _all_from_bill(follower, "lake-bill-later", 2), 30, "later calls priced at ingest")
    # Shipped, the lake holds every one of them priced from the bill, once.
    wait_settled(list(procs.values()))
    for service, n in (("lake-bill", 4), ("lake-bill-later", 2)):
        got = wait_for(
            lambda s=service, n=n: (
                (rows := _lake_calls(catalog, s))
                and len(rows) == n
                and all(x[:2] == ("priced", "bill") for x in rows)
                and rows
            ),
            30,
            f"{service} priced in the lake",
        )
        assert len(got) == n
    drift = leader.get("/api/v1/prices/bill", **WINDOW).json()["rows"]
    assert {(x["model"], x["status"]) for x in drift} == {(NEW, "prices")}
    assert follower.get("/api/v1/prices/bill", **WINDOW).json()["rows"] == drift
