"""Reconciliation: tracked spend (priced spans) against billed spend (Costs API) and usage buckets.

* ``tracked_usd``: the sum of ``calls.cost_usd`` (what the instrumented apps explain);
* ``billed_usd``: the Costs API (the bill). The Costs API has no model dimension, so it is null
  when grouping by model;
* ``capture_rate`` = tracked / billed, null when billed is 0 or unknown;
* ``estimated_usd``: the Usage API's buckets priced with our own table, an estimate for all traffic,
  instrumented or not; with the token columns it shows *which* models and projects the gap is in.

Calls count by their start time; Usage and Costs buckets by their start, so ranges should fall on
bucket (for costs: UTC day) boundaries. Days are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import duckdb

from spendscope.pricing import money_str

__all__ = ["COST_KEYS", "GROUP_KEYS", "USAGE_KEYS", "costs_summary", "reconcile", "usage_summary"]

GROUP_KEYS = ("day", "project", "model")
_RATE_PLACES = Decimal("0.000001")
# Endpoints whose results are model traffic measured in tokens (the others are tools and storage).
_TOKEN_ENDPOINTS = ("completions", "embeddings", "moderations")

_CALLS = {"day": "day", "project": "project", "model": "model"}
_USAGE = {"day": "day", "project": "project_id", "model": "model"}
_COSTS = {"day": "day", "project": "project_id", "model": "NULL"}


def _rate(num: Decimal | int | None, den: Decimal | int | None) -> str | None:
    if num is None or den is None or den == 0:
        return None
    return money_str((Decimal(num) / Decimal(den)).quantize(_RATE_PLACES, ROUND_HALF_EVEN))


def _select(cols: dict[str, str], keys: Sequence[str]) -> str:
    return ", ".join(f"{cols[k]} AS k_{k}" for k in keys)


def _keyed(
    con: duckdb.DuckDBPyConnection, sql: str, args: Sequence[Any], nkeys: int
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {tuple(r[:nkeys]): tuple(r[nkeys:]) for r in con.execute(sql, list(args)).fetchall()}


def _key_json(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def reconcile(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, group_by: Sequence[str]
) -> dict[str, Any]:
    """Rows per group with tracked, billed and estimated spend and token volumes, plus totals."""
    keys = list(group_by)
    n = len(keys)

    def sel(cols: dict[str, str]) -> str:
        return _select(cols, keys) + ", " if keys else ""

    def grp(cols: dict[str, str]) -> str:
        return "GROUP BY " + ", ".join(cols[k] for k in keys) if keys else ""

    s_epoch, e_epoch = int(start.timestamp()), int(end.timestamp())
    tracked = _keyed(
        con,
        f"""SELECT {sel(_CALLS)} sum(cost_usd), count(*) FILTER (WHERE cost_usd IS NULL),
                   count(*) FILTER (WHERE NOT is_error), sum(input_tokens), sum(output_tokens),
                   sum(cached_input_tokens)
            FROM calls WHERE start_time >= ? AND start_time < ? {grp(_CALLS)}""",
        [start, end],
        n,
    )
    billed = _keyed(
        con,
        f"""SELECT {sel(_COSTS)} sum(amount), count(*) FILTER (WHERE amount IS NULL)
            FROM cost_buckets
            WHERE bucket_start_s >= ? AND bucket_start_s < ? AND coalesce(currency, 'usd') = 'usd'
            {grp(_COSTS)}""",
        [s_epoch, e_epoch],
        n,
    )
    token_eps = ", ".join(f"'{e}'" for e in _TOKEN_ENDPOINTS)
    usage = _keyed(
        con,
        f"""SELECT {sel(_USAGE)} sum(estimated_cost_usd),
                   count(*) FILTER (WHERE pricing_status = 'unpriced'),
                   sum(num_model_requests) FILTER (WHERE endpoint IN ({token_eps})),
                   sum(input_tokens) FILTER (WHERE endpoint IN ({token_eps})),
                   sum(output_tokens) FILTER (WHERE endpoint IN ({token_eps})),
                   sum(cached_input_tokens) FILTER (WHERE endpoint IN ({token_eps}))
            FROM usage_buckets WHERE bucket_start_s >= ? AND bucket_start_s < ? {grp(_USAGE)}""",
        [s_epoch, e_epoch],
        n,
    )
    by_model = "model" in keys
    all_keys = sorted(
        set(tracked) | set(billed) | set(usage), key=lambda k: tuple((v is None, str(v)) for v in k)
    )
    rows = []
    tot: dict[str, Any] = {"tracked": Decimal(0), "billed": None, "estimated": None}
    for k in all_keys:
        t = tracked.get(k, (None, 0, 0, None, None, None))
        b = billed.get(k, (None, 0))
        u = usage.get(k, (None, 0, None, None, None, None))
        tracked_usd = t[0] if t[0] is not None else Decimal(0)
        billed_usd = None if by_model else (b[0] if b[0] is not None else Decimal(0))
        tok_tracked = (t[3] or 0) + (t[4] or 0)
        tok_usage = (u[3] or 0) + (u[4] or 0)
        row: dict[str, Any] = {key: _key_json(v) for key, v in zip(keys, k, strict=True)}
        row |= {
            "tracked_usd": money_str(tracked_usd),
            "billed_usd": money_str(billed_usd),
            "capture_rate": _rate(tracked_usd, billed_usd),
            "untracked_usd": None if billed_usd is None else money_str(billed_usd - tracked_usd),
            "estimated_usd": money_str(u[0]),
            "calls": int(t[2]),
            "unpriced_calls": int(t[1]),
            "unpriced_usage_rows": int(u[1]),
            "tracked_input_tokens": int(t[3] or 0),
            "tracked_output_tokens": int(t[4] or 0),
            "tracked_cached_input_tokens": int(t[5] or 0),
            "usage_requests": int(u[2] or 0),
            "usage_input_tokens": int(u[3] or 0),
            "usage_output_tokens": int(u[4] or 0),
            "usage_cached_input_tokens": int(u[5] or 0),
            "token_capture_rate": _rate(tok_tracked, tok_usage),
        }
        rows.append(row)
        tot["tracked"] += tracked_usd
        if billed_usd is not None:
            tot["billed"] = (tot["billed"] or Decimal(0)) + billed_usd
        if u[0] is not None:
            tot["estimated"] = (tot["estimated"] or Decimal(0)) + u[0]
    if not by_model and tot["billed"] is None:
        tot["billed"] = Decimal(0)
    totals = {
        "tracked_usd": money_str(tot["tracked"]),
        "billed_usd": money_str(tot["billed"]),
        "capture_rate": _rate(tot["tracked"], tot["billed"]),
        "estimated_usd": money_str(tot["estimated"]),
    }
    return {"rows": rows, "totals": totals}


USAGE_KEYS = {
    "day": "day",
    "endpoint": "endpoint",
    "project": "project_id",
    "model": "model",
    "api_key": "api_key_id",
    "batch": "batch",
    "service_tier": "service_tier",
}


def usage_summary(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, group_by: Sequence[str]
) -> list[dict[str, Any]]:
    """Usage-API volumes (and our estimate) grouped by any of ``USAGE_KEYS``: uninstrumented traffic too."""
    cols = [USAGE_KEYS[k] for k in group_by]
    sel = ", ".join(f"{c} AS {k}" for c, k in zip(cols, group_by, strict=True))
    sql = f"""SELECT {sel + ", " if sel else ""}sum(num_model_requests), sum(input_tokens),
                sum(cached_input_tokens), sum(output_tokens), sum(estimated_cost_usd),
                count(*) FILTER (WHERE pricing_status = 'unpriced')
              FROM usage_buckets WHERE bucket_start_s >= ? AND bucket_start_s < ?
              {"GROUP BY " + ", ".join(cols) if cols else ""} ORDER BY {(sel and ", ".join(cols)) or 1}"""
    out = []
    for r in con.execute(sql, [int(start.timestamp()), int(end.timestamp())]).fetchall():
        n = len(group_by)
        row: dict[str, Any] = {k: _key_json(v) for k, v in zip(group_by, r[:n], strict=True)}
        req, inp, cached, outp, est, unpriced = r[n:]
        row |= {
            "requests": int(req or 0),
            "input_tokens": int(inp or 0),
            "cached_input_tokens": int(cached or 0),
            "output_tokens": int(outp or 0),
            "estimated_usd": money_str(est),
            "unpriced_rows": int(unpriced or 0),
        }
        out.append(row)
    return out


COST_KEYS = {"day": "day", "project": "project_id", "line_item": "line_item", "api_key": "api_key_id"}


def costs_summary(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, group_by: Sequence[str]
) -> list[dict[str, Any]]:
    """Billed amounts grouped by any of ``COST_KEYS``: by line item it shows tools and storage too."""
    cols = [COST_KEYS[k] for k in group_by]
    sel = ", ".join(f"{c} AS {k}" for c, k in zip(cols, group_by, strict=True))
    sql = f"""SELECT {sel + ", " if sel else ""}sum(amount), count(*)
              FROM cost_buckets
              WHERE bucket_start_s >= ? AND bucket_start_s < ? AND coalesce(currency, 'usd') = 'usd'
              {"GROUP BY " + ", ".join(cols) if cols else ""} ORDER BY {(sel and ", ".join(cols)) or 1}"""
    out = []
    for r in con.execute(sql, [int(start.timestamp()), int(end.timestamp())]).fetchall():
        n = len(group_by)
        row: dict[str, Any] = {k: _key_json(v) for k, v in zip(group_by, r[:n], strict=True)}
        row |= {"billed_usd": money_str(r[n] if r[n] is not None else Decimal(0)), "results": int(r[n + 1])}
        out.append(row)
    return out
