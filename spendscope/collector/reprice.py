"""Re-pricing stored calls with the current price table: explicit, logged, recorded.

Runs one UTC day at a time, each day as its own task in the writer thread, so ingest keeps flowing
between days. Changed days are marked dirty so the rollup job recomputes them. Pricing the calls
stored as unpriced once the bill gives their price (:func:`price_from_bill`) changes nothing priced
and needs no command.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Literal

import duckdb
import pyarrow as pa

from spendscope.collector.context import CollectorContext
from spendscope.collector.pricer import Pricer, PricingResult, pico_to_decimal
from spendscope.collector.rollups import mark_dirty
from spendscope.pricing import PriceTable, money_str

__all__ = ["Scope", "price_from_bill", "record_price_version", "reprice", "reprice_day"]

log = logging.getLogger("spendscope.collector.reprice")

_COLUMNS = (
    "SELECT trace_id, span_id, epoch_ns(start_time), model, service_tier, batch, is_error, "
    "input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, "
    "input_audio_tokens, output_audio_tokens, price_id, pricing_status, cost_usd, price_origin, day"
)
_SELECT = _COLUMNS + " FROM calls WHERE day = $day AND start_time >= $since"
_UPDATE_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("price_id", pa.string()),
        ("pricing_status", pa.string()),
        ("cost_pico", pa.int64()),
        ("price_origin", pa.string()),
    ]
)
_SAMPLE = 20


def record_price_version(con: duckdb.DuckDBPyConnection, table: PriceTable, now: datetime) -> None:
    """Keep each price table version the collector has run with, with its rows, for audits."""
    con.execute(
        "INSERT INTO price_versions VALUES ($v, $now, $rows::JSON) ON CONFLICT (version) DO NOTHING",
        {"v": table.version, "now": now, "rows": json.dumps(table.rows(), default=str)},
    )


def _price(pricer: Pricer, r: tuple[Any, ...]) -> PricingResult:
    """Price a row of ``_COLUMNS`` as it would be priced at ingest."""
    return pricer.price(r[3], r[4], r[5], start_ns=r[2], is_error=r[6], tokens=r[7:14])


def reprice_day(
    con: duckdb.DuckDBPyConnection,
    pricer: Pricer,
    day: Any,
    since: datetime,
    lake: bool = False,
) -> dict[str, Any]:
    """Re-price one day's calls started since ``since``; ``lake``: ``con`` is the lake's."""
    rows = con.execute(_SELECT, {"day": day, "since": since}).fetchall()
    changed: list[tuple[Any, ...]] = []
    before = after = Decimal(0)
    samples: list[dict[str, Any]] = []
    for r in rows:
        price_id, status, pico, origin = _price(pricer, r)
        old = r[16]
        new = None if pico is None else pico_to_decimal(pico)
        before += old or 0
        after += new or 0
        if (price_id, status, new, origin) != (r[14], r[15], old, r[17]):
            changed.append((r[0], r[1], price_id, status, pico, origin))
            if len(samples) < _SAMPLE:
                samples.append(
                    {
                        "trace_id": r[0],
                        "span_id": r[1],
                        "model": r[3],
                        "price_id_before": r[14],
                        "price_id_after": price_id,
                        "cost_before": money_str(old),
                        "cost_after": money_str(new),
                    }
                )
    if changed:
        _write_changes(con, changed, [day], lake)
    return {
        "examined": len(rows),
        "changed": len(changed),
        "before": before,
        "after": after,
        "samples": samples,
    }


def _write_changes(
    con: duckdb.DuckDBPyConnection,
    changed: list[tuple[Any, ...]],
    days: list[Any],
    lake: bool,
    only_unpriced: bool = False,
) -> None:
    """Store new prices (``_UPDATE_SCHEMA`` rows) of calls on ``days`` and mark the days for the
    rollup job, in one transaction; ``only_unpriced`` leaves any call priced meanwhile alone."""
    upd = pa.Table.from_arrays([pa.array(c) for c in zip(*changed, strict=True)], schema=_UPDATE_SCHEMA)
    guard = " AND calls.pricing_status = 'unpriced'" if only_unpriced else ""
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("reprice_in", upd)
        con.execute(
            "UPDATE calls SET price_id = u.price_id, pricing_status = u.pricing_status, "
            "price_origin = u.price_origin, "
            "cost_usd = CAST(u.cost_pico AS DECIMAL(38, 0)) * 0.000000000001 FROM reprice_in u "
            # The range lets zone maps skip other days' row groups; the list keeps only these days.
            "WHERE calls.day >= $lo AND calls.day <= $hi AND list_contains($days::DATE[], calls.day) "
            f"AND calls.trace_id = u.trace_id AND calls.span_id = u.span_id{guard}",
            {"days": days, "lo": min(days), "hi": max(days)},
        )
        mark_dirty(con, days, lake_table="rollup_state" if lake else None)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("reprice_in")


# Which stored calls price_from_bill reads: the collector's file; a lake replica's file, where a
# call already claimed by a shipment is left to the lake (so none is priced, and counted, twice);
# the lake's calls.
Scope = Literal["file", "buffer", "lake"]
_UNCLAIMED = (
    " AND NOT EXISTS (SELECT 1 FROM lake_shipping f WHERE f.trace_id = calls.trace_id "
    "AND f.span_id = calls.span_id)"
)


def price_from_bill(con: duckdb.DuckDBPyConnection, pricer: Pricer, scope: Scope = "file") -> dict[str, Any]:
    """Price the calls stored as unpriced whose model only the bill prices, now that it does.

    Only unpriced calls change: a price learned from the bill fills a gap and replaces nothing, so
    it needs no reprice command. Runs in the writer thread, so a batch committed after it was priced
    with the same prices (see :func:`~spendscope.collector.pricer.price_unpriced`).
    """
    where = "pricing_status = 'unpriced'" + (_UNCLAIMED if scope == "buffer" else "")
    models = [r[0] for r in con.execute(f"SELECT DISTINCT model FROM calls WHERE {where}").fetchall()]
    models = [m for m in models if pricer.table.priced_by_bill(m)]
    if not models:
        return {"calls_priced": 0, "cost_usd": Decimal(0)}
    rows = con.execute(
        _COLUMNS + f" FROM calls WHERE {where} AND list_contains($models, model)", {"models": models}
    ).fetchall()
    changed: list[tuple[Any, ...]] = []
    days: set[Any] = set()
    cost = Decimal(0)
    for r in rows:
        price_id, status, pico, origin = _price(pricer, r)
        if status != "unpriced":
            changed.append((r[0], r[1], price_id, status, pico, origin))
            days.add(r[18])
            cost += 0 if pico is None else pico_to_decimal(pico)
    if changed:
        _write_changes(con, changed, sorted(days), scope == "lake", only_unpriced=True)
    return {"calls_priced": len(changed), "cost_usd": cost}


def _reprice_everywhere(ctx: CollectorContext, pricer: Pricer, day: Any, since: datetime) -> dict[str, Any]:
    """One day: the local file's calls, and with a lake then the lake's (in that order, so a row
    shipped in between is re-priced on one side or the other, never missed)."""
    res: dict[str, Any] = ctx.store.run_write(partial(reprice_day, pricer=pricer, day=day, since=since))
    if ctx.lake is None:
        return res
    shared: dict[str, Any] = ctx.lake.state.run_write(
        partial(reprice_day, pricer=pricer, day=day, since=since, lake=True)
    )
    return {
        **{k: res[k] + shared[k] for k in ("examined", "changed", "before", "after")},
        "samples": res["samples"] + shared["samples"],
    }


def reprice(ctx: CollectorContext, since: datetime) -> dict[str, Any]:
    """Recompute the cost of every call since ``since`` with the current table; return what changed."""
    pricer = Pricer(ctx.prices)
    cur = ctx.store.cursor()
    try:
        days = [
            r[0]
            for r in cur.execute(
                "SELECT DISTINCT day FROM calls WHERE start_time >= $since ORDER BY day", {"since": since}
            ).fetchall()
        ]
    finally:
        cur.close()
    examined = changed = 0
    before = after = Decimal(0)
    samples: list[dict[str, Any]] = []
    for day in days:
        res = _reprice_everywhere(ctx, pricer, day, since)
        examined += res["examined"]
        changed += res["changed"]
        before += res["before"]
        after += res["after"]
        samples.extend(res["samples"][: max(0, _SAMPLE - len(samples))])
    now = ctx.clock()

    def record(con: duckdb.DuckDBPyConnection) -> None:
        # The version a run used is on record with its rows (prices from the bill change it).
        record_price_version(con, pricer.table, now)
        con.execute(
            "INSERT INTO reprice_runs VALUES ($now, $since, $v, $n, $c, $b, $a)",
            {
                "now": now,
                "since": since,
                "v": pricer.version,
                "n": examined,
                "c": changed,
                "b": before,
                "a": after,
            },
        )

    ctx.store.run_write(record)
    log.info(
        "repriced calls since %s with price version %s: %d examined, %d changed, cost %s -> %s",
        since.isoformat(),
        pricer.version,
        examined,
        changed,
        money_str(before),
        money_str(after),
    )
    return {
        "ok": True,
        "since": since.isoformat().replace("+00:00", "Z"),
        "price_version": pricer.version,
        "calls_examined": examined,
        "calls_changed": changed,
        "cost_before_usd": money_str(before),
        "cost_after_usd": money_str(after),
        "days": len(days),
        "changes": samples,
    }
