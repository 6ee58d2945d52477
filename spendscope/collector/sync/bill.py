"""Prices derived from the bill, in the collector: derived from the stored Costs API line items,
stored for reading (``bill_prices``), and put to work.

After every sync of the costs, and at start (the price files may have changed), :func:`derive_bill`
reads ``cost_buckets``, lets :mod:`spendscope.pricing.bill` read each day's line items, and
replaces ``bill_prices``: the unit prices of models no price file knows price calls (status
``prices``), those of known models are set beside the table's price (``compared``, with the drift).
:func:`install` then makes the bill the price table's last origin everywhere a call is priced: the
context's table and in-process pricer (new calls), the writer's late pricer (batches the decode
workers priced without it), and :func:`~spendscope.collector.reprice.price_from_bill` prices the
calls already stored as unpriced. Nothing priced changes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from spendscope.collector.context import CollectorContext
from spendscope.collector.pricer import Pricer
from spendscope.collector.queries import Query
from spendscope.collector.reprice import price_from_bill
from spendscope.pricing import PriceRow, PriceTable, money_str
from spendscope.pricing.bill import BillLine, BillPrice, bill_rows, compare, derive

__all__ = ["BILL_COLUMNS", "build_bill_prices", "build_drift", "derive_bill", "install", "refresh"]

log = logging.getLogger("spendscope.sync.bill")

Write = Callable[[Callable[[duckdb.DuckDBPyConnection], Any]], Any]

# A line item per UTC day and unit, summed over projects and keys; a sum with a missing part is
# unknown, not the sum of the rest.
_LINES_SQL = (
    "SELECT day, line_item, CASE WHEN count(*) = count(amount) THEN sum(amount) END, "
    "CASE WHEN count(*) = count(quantity) THEN sum(quantity) END, quantity_unit, currency "
    "FROM cost_buckets WHERE line_item IS NOT NULL "
    "GROUP BY day, line_item, quantity_unit, currency ORDER BY day, line_item"
)
BILL_COLUMNS: tuple[str, ...] = (
    "day",
    "line_item",
    "amount",
    "quantity",
    "quantity_unit",
    "currency",
    "model",
    "kind",
    "tier",
    "unit",
    "unit_price",
    "status",
    "reason",
    "price_id",
    "price_origin",
    "table_unit_price",
    "drift",
    "derived_at",
)


def _lines(con: duckdb.DuckDBPyConnection) -> list[BillLine]:
    return [
        BillLine(day=r[0], line_item=r[1], amount=r[2], quantity=r[3], quantity_unit=r[4], currency=r[5])
        for r in con.execute(_LINES_SQL).fetchall()
    ]


def _record(p: BillPrice, base: PriceTable, full: PriceTable, now: datetime) -> tuple[tuple[Any, ...], str]:
    status: str = p.use
    reason, price_id, origin = p.reason, None, None
    table_price: Decimal | None = None
    drift: Decimal | None = None
    model, tier, day = p.item.model, p.item.tier, p.line.day
    if p.use == "prices" and model is not None:
        if base.resolve(model) is None:
            row = full.row_in_force(model, tier, day)
            if row is not None:
                price_id, origin = row.price_id, row.price_origin
        else:
            status = "compared"
            cmp = compare(base, p)
            if cmp is None:
                reason = f"the price table has no {tier} row for the model on that day"
            else:
                price_id, origin = cmp.row.price_id, cmp.row.price_origin
                table_price, drift = cmp.table_unit_price, cmp.drift
                if table_price is None:
                    reason = "the price table's row has no price for this kind"
    values = (
        day,
        p.line.line_item,
        p.line.amount,
        p.line.quantity,
        p.line.quantity_unit,
        p.line.currency,
        model,
        p.item.kind,
        tier,
        p.unit,
        p.unit_price,
        status,
        reason,
        price_id,
        origin,
        table_price,
        drift,
        now,
    )
    return values, status


def derive_bill(
    con: duckdb.DuckDBPyConnection, table: PriceTable, now: datetime
) -> tuple[tuple[PriceRow, ...], dict[str, int]]:
    """Replace ``bill_prices`` from ``cost_buckets``; the rows that price calls, and counts by status.

    ``table`` is the table in force (its bill rows, if any, are left out and made again). Runs in
    the writer thread.
    """
    prices = derive(_lines(con))
    base = table.without_bill()
    rows = bill_rows(p for p in prices if p.item.model is not None and base.resolve(p.item.model) is None)
    full = base.with_bill(rows)
    records = [_record(p, base, full, now) for p in prices]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM bill_prices")
        if records:
            marks = ", ".join("?" * len(BILL_COLUMNS))
            con.executemany(
                f"INSERT INTO bill_prices ({', '.join(BILL_COLUMNS)}) VALUES ({marks})",
                [list(values) for values, _ in records],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts = Counter(status for _, status in records)
    return rows, {s: counts.get(s, 0) for s in ("prices", "compared", "recorded", "ignored")}


def install(ctx: CollectorContext, rows: Sequence[PriceRow]) -> Pricer:
    """Make ``rows`` the bill origin of the context's table; return the pricer that now prices calls.

    The writer's late pricer is set before any stored call is priced from the bill, so a batch
    committed after :func:`~spendscope.collector.reprice.price_from_bill` ran was priced the same way.
    """
    table = ctx.prices.with_bill(rows)
    pricer = Pricer(table)
    ctx.prices = table
    ctx.pricer = pricer
    if ctx.writer is not None:
        ctx.writer.late_pricer = pricer if rows else None
    return pricer


def refresh(ctx: CollectorContext, write: Write | None = None) -> dict[str, Any]:
    """Derive the bill's prices again, put them to work, and price the calls stored as unpriced
    that they price. What a sync of the costs answers under ``bill_prices``.

    ``write`` runs a function on the writer's connection: the writer thread's by default; at start,
    before that thread runs, the connection itself.
    """
    run = write or ctx.store.run_write
    rows, counts = run(lambda con: derive_bill(con, ctx.prices, ctx.clock()))
    pricer = install(ctx, rows)
    filled: dict[str, Any] = {"calls_priced": 0, "cost_usd": Decimal(0)}
    if rows:
        filled = run(lambda con: price_from_bill(con, pricer))
    if filled["calls_priced"]:
        log.info(
            "priced %d stored call(s) from the bill (%s USD); price table %s",
            filled["calls_priced"],
            money_str(filled["cost_usd"]),
            ctx.prices.version,
        )
    return {
        **counts,
        "models": len({r.model for r in rows}),
        "calls_priced": filled["calls_priced"],
        "calls_priced_usd": money_str(filled["cost_usd"]),
        "price_version": ctx.prices.version,
    }


def build_bill_prices(start: date, end: date) -> Query:
    """The ``bill_prices`` rows of days in [start, end), newest first."""
    cols = ", ".join(c for c in BILL_COLUMNS if c != "derived_at")
    return Query(
        f"SELECT {cols} FROM bill_prices WHERE day >= $start AND day < $end ORDER BY day DESC, line_item",
        {"start": start, "end": end},
    )


def build_drift(start: date, end: date, threshold: Decimal) -> Query:
    """One row per billed model, tier and kind whose bill price differed from the table's by more
    than ``threshold`` (a fraction) on a day in [start, end): the latest such day, with both unit
    prices, and how many days drifted."""
    over = (
        "status = 'compared' AND table_unit_price IS NOT NULL AND day >= $start AND day < $end "
        "AND (abs(drift) > $threshold OR (drift IS NULL AND unit_price > 0))"
    )
    key = "PARTITION BY model, tier, kind"
    sql = (
        "SELECT model, tier, kind, unit, unit_price AS bill_unit_price, table_unit_price, "
        "drift, price_id, price_origin, day, "
        f"count(*) OVER ({key}) AS days, min(day) OVER ({key}) AS first_day, line_item, "
        f"amount AS amount_usd, quantity, quantity_unit FROM bill_prices WHERE {over} "
        f"QUALIFY row_number() OVER ({key} ORDER BY day DESC) = 1 "
        "ORDER BY abs(drift) DESC NULLS FIRST, model, tier, kind"
    )
    return Query(sql, {"start": start, "end": end, "threshold": threshold})
