"""The fake's Usage and Costs endpoints, called directly (no HTTP): the real API's quirks."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from spendscope.fake_openai import usage_api
from spendscope.fake_openai.ledger import Ledger, LedgerRow
from spendscope.fake_openai.usage_buckets import bucket_edges, parse_query

NOW = 1_773_581_820  # 2026-03-15T13:37:00Z
DAY = 86400
ADMIN = {"Authorization": "Bearer sk-admin-test"}


def _row(ts: float, **kw: Any) -> LedgerRow:
    base: dict[str, Any] = {
        "endpoint": "chat.completions",
        "model": "gpt-4o-mini-2024-07-18",
        "request_model": "gpt-4o-mini",
        "status": 200,
        "project_id": "proj_a",
        "api_key_id": "key_a",
        "input_tokens": 100,
        "cached_tokens": 20,
        "output_tokens": 50,
    }
    return LedgerRow(ts=ts, **(base | kw))


@pytest.fixture
def ledger() -> Ledger:
    led = Ledger()
    led.extend(_row(NOW - i * 7 * 3600) for i in range(12))
    led.append(_row(NOW - 3600, project_id="proj_b", batch=True))
    led.append(
        _row(
            NOW - 3600,
            endpoint="embeddings",
            model="text-embedding-3-small",
            output_tokens=0,
            cached_tokens=0,
        )
    )
    led.append(_row(NOW - 60, billed=False, status=429))
    return led


def get(ledger: Ledger, path: str, query: str, headers: dict[str, str] = ADMIN) -> tuple[int, Any]:
    status, _, body = usage_api.handle("GET", f"/v1/organization/{path}", query, headers, ledger, NOW)
    return status, json.loads(body, parse_float=Decimal)


def test_query_styles_are_equivalent() -> None:
    a = parse_query("group_by%5B%5D=model&group_by%5B%5D=project_id&batch=true")
    b = parse_query("group_by=model&group_by=project_id&batch=true")
    c = parse_query("group_by=model,project_id&batch=true")
    assert a == b == c == {"group_by": ["model", "project_id"], "batch": ["true"]}


def test_bucket_edges_unaligned_first_and_last() -> None:
    edges = bucket_edges(NOW - 2 * DAY, NOW, DAY)
    assert edges[0] == (NOW - 2 * DAY, (NOW - 2 * DAY) // DAY * DAY + DAY)
    assert all(s % DAY == 0 for s, _ in edges[1:])
    assert edges[-1][1] == NOW
    assert len(edges) == 3


def test_pages_follow_cursor_and_cover_everything(ledger: Ledger) -> None:
    start = NOW - 5 * DAY
    q = f"start_time={start}&bucket_width=1d&limit=2&group_by[]=project_id&group_by=model"
    buckets, cursor, pages = [], None, 0
    while True:
        status, doc = get(ledger, "usage/completions", q + (f"&page={cursor}" if cursor else ""))
        assert status == 200, doc
        pages += 1
        buckets += doc["data"]
        if not doc["has_more"]:
            assert doc["next_page"] is None
            break
        cursor = doc["next_page"]
        assert cursor.startswith("page_")
    assert pages == 3 and len(buckets) == 6
    assert buckets[0]["start_time"] == start  # unaligned first bucket
    assert buckets[-1]["end_time"] == NOW + 1  # the last one ends at "now" (rounded up)
    assert any(b["results"] == [] for b in buckets)  # empty buckets are sent
    total = sum(r["input_tokens"] for b in buckets for r in b["results"])
    assert total == sum(
        r.input_tokens for r in ledger.billed() if r.endpoint == "chat.completions" and r.ts >= start
    )
    r0 = next(r for b in buckets for r in b["results"])
    assert r0["api_key_id"] is None and r0["user_id"] is None  # not grouped: null
    assert r0["input_uncached_tokens"] == r0["input_tokens"] - r0["input_cached_tokens"]


def test_cursor_of_another_query_is_refused(ledger: Ledger) -> None:
    _, doc = get(ledger, "usage/completions", f"start_time={NOW - 5 * DAY}&limit=1")
    status, err = get(
        ledger, "usage/completions", f"start_time={NOW - 4 * DAY}&limit=1&page={doc['next_page']}"
    )
    assert status == 400 and err["error"]["param"] == "page"


@pytest.mark.parametrize(
    ("path", "query", "param"),
    [
        ("usage/completions", "bucket_width=1d", "start_time"),
        ("usage/completions", f"start_time={NOW}&bucket_width=1d&limit=32", "limit"),
        ("usage/completions", f"start_time={NOW}&bucket_width=1h&limit=169", "limit"),
        ("usage/completions", f"start_time={NOW}&bucket_width=1m&limit=1441", "limit"),
        ("usage/completions", f"start_time={NOW}&bucket_width=2h", "bucket_width"),
        ("usage/embeddings", f"start_time={NOW}&group_by=batch", "group_by"),
        ("costs", f"start_time={NOW}&bucket_width=1h", "bucket_width"),
        ("costs", f"start_time={NOW}&limit=181", "limit"),
    ],
)
def test_validation(ledger: Ledger, path: str, query: str, param: str) -> None:
    status, err = get(ledger, path, query)
    assert (
        status == 400 and err["error"]["param"] == param and err["error"]["type"] == "invalid_request_error"
    )


def test_limit_upper_bounds_are_accepted(ledger: Ledger) -> None:
    assert get(ledger, "usage/completions", f"start_time={NOW - DAY}&bucket_width=1m&limit=1440")[0] == 200
    assert get(ledger, "costs", f"start_time={NOW - DAY}&limit=180")[0] == 200


def test_admin_key_required(ledger: Ledger) -> None:
    status, err = get(
        ledger, "costs", f"start_time={NOW}", {"Authorization": "Bearer sk-proj-abcdefghijklmnop"}
    )
    assert status == 401 and err["error"]["code"] == "invalid_api_key"
    assert "sk-proj-abcdefghijklmnop" not in err["error"]["message"]
    assert get(ledger, "costs", f"start_time={NOW}", {})[0] == 401


def test_filters_and_batch(ledger: Ledger) -> None:
    _, doc = get(ledger, "usage/completions", f"start_time={NOW - DAY}&batch=true&group_by=batch")
    results = [r for b in doc["data"] for r in b["results"]]
    assert [(r["batch"], r["input_tokens"]) for r in results] == [(True, 100)]
    _, doc = get(ledger, "usage/completions", f"start_time={NOW - DAY}&project_ids[]=proj_b")
    assert sum(r["num_model_requests"] for b in doc["data"] for r in b["results"]) == 1


def test_costs_line_items_are_exact_decimals(ledger: Ledger) -> None:
    st = usage_api.reset(ledger)
    _, doc = get(ledger, "costs", f"start_time={NOW - 3 * DAY}&group_by[]=line_item&group_by[]=project_id")
    results = [r for b in doc["data"] for r in b["results"]]
    items = {r["line_item"] for r in results}
    assert {"gpt-4o-mini-2024-07-18, input", "gpt-4o-mini-2024-07-18, output"} <= items
    assert all(
        isinstance(r["amount"]["value"], Decimal) and r["amount"]["currency"] == "usd" for r in results
    )
    batch = [r for r in results if r["project_id"] == "proj_b" and r["line_item"].endswith(", output, batch")]
    # 50 output tokens at 0.60/M, half price for batch
    assert batch[0]["amount"]["value"] == Decimal("0.000015")
    st.string_amount = True
    _, doc = get(ledger, "costs", f"start_time={NOW - DAY}")
    assert all(isinstance(r["amount"]["value"], str) for b in doc["data"] for r in b["results"])
    usage_api.reset(ledger)


def test_v2025_profile_and_revision(ledger: Ledger) -> None:
    st = usage_api.reset(ledger)
    st.profile = "v2025"
    _, doc = get(ledger, "usage/completions", f"start_time={NOW - DAY}")
    r = doc["data"][-1]["results"][0]
    assert "service_tier" not in r and "input_cache_write_tokens" not in r
    assert get(ledger, "usage/completions", f"start_time={NOW}&group_by=service_tier")[0] == 400
    usage_api.reset(ledger)
    before = get(ledger, "usage/completions", f"start_time={NOW - DAY}")[1]
    ledger.revise(0, output_tokens=5000)
    after = get(ledger, "usage/completions", f"start_time={NOW - DAY}")[1]
    out = lambda d: sum(r["output_tokens"] for b in d["data"] for r in b["results"])  # noqa: E731
    assert out(after) - out(before) == 4950


def test_data_lag_hides_recent_usage(ledger: Ledger) -> None:
    st = usage_api.reset(ledger)
    st.lag_s = 2 * 3600
    _, doc = get(ledger, "usage/completions", f"start_time={NOW - 2 * 3600}&bucket_width=1h")
    assert all(b["results"] == [] for b in doc["data"])
    usage_api.reset(ledger)
