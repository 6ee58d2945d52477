"""Re-pricing stored calls with the current price table: explicit, logged, recorded.

Runs one UTC day at a time, each day as its own task in the writer thread, so ingest keeps flowing
between days. Changed days are marked dirty so the rollup job recomputes them.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

import duckdb
import pyarrow as pa

from spendscope.collector.context import CollectorContext
from spendscope.collector.pricer import Pricer, pico_to_decimal
from spendscope.pricing import PriceTable, money_str

__all__ = ["record_price_version", "reprice", "reprice_day"]

log = logging.getLogger("spendscope.collector.reprice")

_SELECT = (
    "SELECT trace_id, span_id, epoch_ns(start_time), model, service_tier, batch, is_error, "
    "input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, "
    "input_audio_tokens, output_audio_tokens, price_id, pricing_status, cost_usd "
    "FROM calls WHERE day = $day AND start_time >= $since"
)
_UPDATE_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("price_id", pa.string()),
        ("pricing_status", pa.string()),
        ("cost_pico", pa.int64()),
    ]
)
_SAMPLE = 20


def record_price_version(con: duckdb.DuckDBPyConnection, table: PriceTable, now: datetime) -> None:
    """Keep each price table version the collector has run with, with its rows, for audits."""
    con.execute(
        "INSERT INTO price_versions VALUES ($v, $now, $rows::JSON) ON CONFLICT (version) DO NOTHING",
        {"v": table.version, "now": now, "rows": json.dumps(table.rows(), default=str)},
    )


# Flag a re-priced day for the rollups: the local table has a key to upsert on; the lake's has none
# (and a marked_at column), so there the flag is replaced.
_MARK_LOCAL = (
    "INSERT INTO rollup_state (day, dirty) VALUES ($day, true) ON CONFLICT (day) DO UPDATE SET dirty = true",
)
_MARK_LAKE = (
    "DELETE FROM rollup_state WHERE day = $day",
    "INSERT INTO rollup_state VALUES ($day, true, NULL, now())",
)


def reprice_day(
    con: duckdb.DuckDBPyConnection,
    pricer: Pricer,
    day: Any,
    since: datetime,
    mark: tuple[str, ...] = _MARK_LOCAL,
) -> dict[str, Any]:
    rows = con.execute(_SELECT, {"day": day, "since": since}).fetchall()
    changed: list[tuple[Any, ...]] = []
    before = after = Decimal(0)
    samples: list[dict[str, Any]] = []
    for r in rows:
        price_id, status, pico = pricer.price(r[3], r[4], r[5], start_ns=r[2], is_error=r[6], tokens=r[7:14])
        old = r[16]
        new = None if pico is None else pico_to_decimal(pico)
        before += old or 0
        after += new or 0
        if (price_id, status, new) != (r[14], r[15], old):
            changed.append((r[0], r[1], price_id, status, pico))
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
        upd = pa.Table.from_arrays([pa.array(c) for c in zip(*changed, strict=True)], schema=_UPDATE_SCHEMA)
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("reprice_in", upd)
            con.execute(
                "UPDATE calls SET price_id = u.price_id, pricing_status = u.pricing_status, "
                "cost_usd = CAST(u.cost_pico AS DECIMAL(38, 0)) * 0.000000000001 FROM reprice_in u "
                "WHERE calls.day = $day AND calls.trace_id = u.trace_id AND calls.span_id = u.span_id",
                {"day": day},
            )
            for sql in mark:
                con.execute(sql, {"day": day})
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("reprice_in")
    return {
        "examined": len(rows),
        "changed": len(changed),
        "before": before,
        "after": after,
        "samples": samples,
    }


def _reprice_day_task(
    con: duckdb.DuckDBPyConnection,
    *,
    pricer: Pricer,
    day: Any,
    since: datetime,
    mark: tuple[str, ...] = _MARK_LOCAL,
) -> dict[str, Any]:
    return reprice_day(con, pricer, day, since, mark)


def _reprice_everywhere(ctx: CollectorContext, pricer: Pricer, day: Any, since: datetime) -> dict[str, Any]:
    """One day: the local file's calls, and with a lake then the lake's (in that order, so a row
    shipped in between is re-priced on one side or the other, never missed)."""
    res: dict[str, Any] = ctx.store.run_write(partial(_reprice_day_task, pricer=pricer, day=day, since=since))
    if ctx.lake is None:
        return res
    shared: dict[str, Any] = ctx.lake.state.run_write(
        partial(_reprice_day_task, pricer=pricer, day=day, since=since, mark=_MARK_LAKE)
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
