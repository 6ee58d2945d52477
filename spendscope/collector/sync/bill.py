"""Prices derived from the bill, in the collector: derived from the stored Costs API line items and
stored for reading (``bill_prices``); :mod:`.bill_refresh` puts them to work.

After every sync of the costs, and at start (the price files may have changed), :func:`derive_bill`
reads ``cost_buckets``, lets :mod:`spendscope.pricing.bill` read each day's line items, and
replaces ``bill_prices``: the unit prices of models no price file knows price calls (status
``prices``), those of known models are set beside the table's price (``compared``, with the drift).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from spendscope.collector.queries import Query
from spendscope.pricing import PriceRow, PriceTable
from spendscope.pricing.bill import BillLine, BillPrice, bill_rows, compare, derive

__all__ = ["BILL_COLUMNS", "build_bill_prices", "build_drift", "derive_bill", "read_bill"]

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


def _derive(
    con: duckdb.DuckDBPyConnection, table: PriceTable
) -> tuple[list[BillPrice], PriceTable, tuple[PriceRow, ...]]:
    """The bill's unit prices, the table without its bill rows, and the rows that price calls."""
    prices = derive(_lines(con))
    base = table.without_bill()
    rows = bill_rows(p for p in prices if p.item.model is not None and base.resolve(p.item.model) is None)
    return prices, base, rows


def read_bill(con: duckdb.DuckDBPyConnection, table: PriceTable) -> tuple[PriceRow, ...]:
    """The rows the stored line items make, against ``table``; reads only (a lake replica that does
    not sync learns the leader's bill this way)."""
    return _derive(con, table)[2]


def derive_bill(
    con: duckdb.DuckDBPyConnection, table: PriceTable, now: datetime
) -> tuple[tuple[PriceRow, ...], dict[str, int]]:
    """Replace ``bill_prices`` from ``cost_buckets``; the rows that price calls, and counts by status.

    ``table`` is the table in force (its bill rows, if any, are left out and made again). Runs in
    the writer thread (with a lake, in the lake's).
    """
    prices, base, rows = _derive(con, table)
    full = base.with_bill(rows)
    records = [_record(p, base, full, now) for p in prices]
    con.execute("BEGIN TRANSACTION")
    try:
        # DELETE and INSERT, no keys: the same SQL serves the lake.
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
