"""Shared pieces of the sync tests: seeded history on the fake, a job on a DuckDB file, totals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from spendscope.collector.components import migrate
from spendscope.collector.store import Store
from spendscope.collector.sync.config import SyncSettings
from spendscope.collector.sync.job import SyncJob
from spendscope.fake_openai.ledger import LedgerRow
from spendscope.fake_openai.usage_api import DEFAULT_PRICES
from spendscope.fake_openai.usage_buckets import ENDPOINTS, cost_lines
from spendscope.pricing import PriceTable

__all__ = [
    "NOW",
    "db_cost_totals",
    "db_usage_totals",
    "dump",
    "history",
    "ledger_cost_totals",
    "ledger_usage_totals",
    "make_job",
    "open_store",
    "settings",
]

NOW = 1_773_581_820  # 2026-03-15T13:37:00Z, the frozen clock of the fake and the job
HOUR, DAY = 3600, 86400
MINI, GPT4O, EMB = "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "text-embedding-3-small"


def history(now: int = NOW) -> list[LedgerRow]:
    """35 days of deterministic traffic nobody instrumented: two projects, two keys, batch, flex,
    embeddings, a vector store bill, and a failed attempt that is not billed."""
    rows = []
    for i in range(70):
        ts = now - i * 12 * HOUR - 17 * 60 - i  # spread over 35 days, off the hour
        model = MINI if i % 3 else GPT4O
        rows.append(
            LedgerRow(
                ts=ts,
                endpoint="chat.completions" if i % 4 else "responses",
                model=model,
                request_model=model.rsplit("-", 3)[0],
                status=200,
                project_id="proj_a" if i % 2 else "proj_b",
                api_key_id="key_1" if i % 5 else "key_2",
                batch=i % 11 == 0,
                service_tier="flex" if i % 7 == 0 else "default",
                input_tokens=1000 + 37 * i,
                cached_tokens=(200 if i % 2 else 0),
                output_tokens=300 + 11 * i,
                reasoning_tokens=0,
            )
        )
        if i % 6 == 0:
            rows.append(
                LedgerRow(
                    ts=ts + 5,
                    endpoint="embeddings",
                    model=EMB,
                    request_model=EMB,
                    status=200,
                    project_id="proj_a",
                    api_key_id="key_1",
                    input_tokens=500 + i,
                )
            )
    rows.append(
        LedgerRow(
            ts=now - 3 * DAY,
            endpoint="vector_stores",
            model="",
            request_model="",
            status=200,
            project_id="proj_b",
            extra={"usage_bytes": 10_000, "cost_usd": "0.10", "line_item": "vector store storage"},
        )
    )
    rows.append(
        LedgerRow(
            ts=now - HOUR,
            endpoint="chat.completions",
            model=MINI,
            request_model="gpt-4o-mini",
            status=429,
            billed=False,
            input_tokens=0,
            output_tokens=0,
        )
    )
    return rows


def settings(base_url: str, admin_key: str, **kw: Any) -> SyncSettings:
    opts: dict[str, Any] = {
        "base_url": base_url,
        "admin_key": admin_key,
        "bucket_width": "1h",
        "max_backoff_s": 0.2,
    }
    return SyncSettings(**(opts | kw))


def make_job(store: Store, s: SyncSettings, now: float = NOW, **kw: Any) -> SyncJob:
    table = PriceTable.default()
    return SyncJob(s, store.run_write, lambda: table, clock=lambda: float(now), **kw)


def open_store(path: Path) -> Store:
    store = Store(str(path))
    migrate(store)
    return store


def ledger_usage_totals(
    rows: Iterable[LedgerRow], endpoint: str, since: int
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    spec = ENDPOINTS[endpoint]
    out: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        if r.billed and spec.counts(r) and r.ts >= since:
            t = out[(r.project_id, r.model)]
            t[0] += r.input_tokens
            t[1] += r.cached_tokens
            t[2] += r.output_tokens
            t[3] += r.num_model_requests
    return {k: tuple(v) for k, v in out.items()}


def db_usage_totals(store: Store, endpoint: str) -> dict[tuple[Any, ...], tuple[int, ...]]:
    cur = store.cursor()
    try:
        rows = cur.execute(
            """SELECT project_id, model, sum(input_tokens), sum(coalesce(cached_input_tokens, 0)),
                      sum(coalesce(output_tokens, 0)), sum(num_model_requests)
               FROM usage_buckets WHERE endpoint = ? GROUP BY ALL""",
            [endpoint],
        ).fetchall()
    finally:
        cur.close()
    return {(r[0], r[1]): tuple(int(x) for x in r[2:]) for r in rows}


def ledger_cost_totals(rows: Iterable[LedgerRow], since: int, prices: Any = None) -> dict[Any, Decimal]:
    out: dict[Any, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.billed and r.ts >= since:
            for _, amount, _, _ in cost_lines(r, prices or DEFAULT_PRICES):
                out[r.project_id] += amount
    return dict(out)


def db_cost_totals(store: Store) -> dict[Any, Decimal]:
    cur = store.cursor()
    try:
        rows = cur.execute("SELECT project_id, sum(amount) FROM cost_buckets GROUP BY ALL").fetchall()
    finally:
        cur.close()
    return {r[0]: r[1] for r in rows}


def dump(store: Store) -> list[Any]:
    """Everything the sync stores about the API's data (not its own bookkeeping)."""
    cur = store.cursor()
    try:
        return [
            cur.execute(f"SELECT * EXCLUDE (bucket_start, bucket_end) FROM {t} ORDER BY ALL").fetchall()
            for t in ("usage_buckets", "cost_buckets")
        ]
    finally:
        cur.close()
