"""Prices from the bill put to work: the bill becomes the price table's last origin everywhere a
call is priced, and the calls stored as unpriced that it prices are priced. Nothing priced changes.

:func:`install` sets the context's table and in-process pricer, the decode workers' (they are
replaced), and the writer's late pricer (for batches decoded before the new workers ran);
:func:`~spendscope.collector.reprice.price_from_bill` prices the stored calls. :func:`refresh` does
all of it after :func:`~spendscope.collector.sync.bill.derive_bill`.

With a lake the leader syncs, so :func:`refresh` derives into the lake and prices the unpriced calls
there and in its own file; every replica :func:`follow` s the lake's line items, so the calls it
receives are priced from the bill too, and its own unshipped unpriced ones once it learns it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import duckdb

from spendscope.collector.context import CollectorContext
from spendscope.collector.lake.replica import LakeUnavailable
from spendscope.collector.pricer import Pricer
from spendscope.collector.reprice import Scope, price_from_bill
from spendscope.collector.sync.bill import derive_bill, read_bill
from spendscope.pricing import PriceRow, money_str

__all__ = ["follow", "install", "refresh"]

log = logging.getLogger("spendscope.sync.bill")

Write = Callable[[Callable[[duckdb.DuckDBPyConnection], Any]], Any]


def install(ctx: CollectorContext, rows: Sequence[PriceRow]) -> Pricer:
    """Make ``rows`` the bill origin of the context's table; return the pricer that now prices calls.

    The in-process pricer and the writer's late pricer change at once; decode workers are replaced
    (gracefully) when the rows changed, and until the new ones run the late pricer prices in the
    writer what the old ones could not. It is set before any stored call is priced from the bill, so
    a batch committed after :func:`~spendscope.collector.reprice.price_from_bill` ran was priced the
    same way.
    """
    before = ctx.prices.version
    table = ctx.prices.with_bill(rows)
    pricer = Pricer(table)
    ctx.prices = table
    ctx.pricer = pricer
    if ctx.writer is not None:
        ctx.writer.late_pricer = pricer if rows else None
    if ctx.price_sources is not None:
        ctx.price_sources = replace(ctx.price_sources, bill=tuple(rows))
        if ctx.decode_pool is not None and table.version != before:
            ctx.decode_pool.reprice(ctx.price_sources)
    return pricer


def _price_stored(ctx: CollectorContext, pricer: Pricer, write: Write | None) -> dict[str, Any]:
    """Price the unpriced calls the bill now prices: the local file's, and with a lake the ones the
    local file has not handed to a shipment yet, then the lake's. A call in flight between the two
    is priced in the lake by the leader's next :func:`follow` round."""
    scope: Scope = "file" if ctx.lake is None else "buffer"
    filled: dict[str, Any] = (write or ctx.store.run_write)(lambda con: price_from_bill(con, pricer, scope))
    if ctx.lake is not None and write is None:
        shared = ctx.lake.state.run_write(lambda con: price_from_bill(con, pricer, "lake"))
        filled = {k: filled[k] + shared[k] for k in ("calls_priced", "cost_usd")}
    return filled


def refresh(ctx: CollectorContext, write: Write | None = None) -> dict[str, Any]:
    """Derive the bill's prices again, put them to work, and price the calls stored as unpriced
    that they price. What a sync of the costs answers under ``bill_prices``.

    ``write`` runs a function on the connection that holds the sync's tables: by default the
    writer thread's (the lake's, with one); at start, before that thread runs, the local connection
    itself.
    """
    rows, counts = (write or ctx.shared.run_write)(lambda con: derive_bill(con, ctx.prices, ctx.clock()))
    pricer = install(ctx, rows)
    filled: dict[str, Any] = {"calls_priced": 0, "cost_usd": Decimal(0)}
    if rows:
        filled = _price_stored(ctx, pricer, write)
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


def follow(ctx: CollectorContext) -> None:
    """With a lake: the bill's prices from the line items the leader's sync stored, put to work on
    this replica, and its unpriced calls priced when they changed. The leader also prices the
    lake's unpriced calls of the bill's models each round: a call a shipment carried while the bill
    came in is priced there within one round."""
    try:
        rows = ctx.store.read(lambda cur: read_bill(cur, ctx.prices))
    except LakeUnavailable:
        return  # not reachable yet; the next round reads it
    before = ctx.prices.version
    pricer = install(ctx, rows)
    if not rows:
        return
    if ctx.prices.version != before:
        ctx.store.run_write(lambda con: price_from_bill(con, pricer, "buffer"))
    if ctx.lake is not None and ctx.is_leader:
        ctx.lake.state.run_write(lambda con: price_from_bill(con, pricer, "lake"))
