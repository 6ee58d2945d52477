"""The core component: the query API, the ``calls`` table and its rollups, retention."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

import duckdb

from spendscope.collector.api import ENDPOINTS
from spendscope.collector.components import Component
from spendscope.collector.context import CollectorContext
from spendscope.collector.ingest import epoch_dates
from spendscope.collector.rollups import apply_retention, roll_dirty_days

__all__ = ["COMPONENT", "ROLLUP_DAYS_PER_TASK", "retention_now", "rollup_now", "safely"]

log = logging.getLogger("spendscope.collector")

# Days re-rolled per writer task: a backfill of many days (a migration, a long outage) then lets
# ingest commits run between its steps instead of holding the writer for its whole length.
ROLLUP_DAYS_PER_TASK = 4


def rollup_now(ctx: CollectorContext) -> int:
    """Re-roll the dirty days that have settled, in the writer thread, a few days per task.

    A day that commits touched since the previous pass is left for a later one: it is still
    receiving calls, so its rollup would be stale at once (queries read its calls meanwhile), and
    re-rolling a busy current day every interval grows with the day until it costs more than
    ingest itself. Returns how many days were rolled.
    """
    if ctx.lake is not None:
        # The local file is only the shipping buffer: the leader rolls up the lake.
        if not ctx.is_leader:
            return 0
        return ctx.lake.roll_up(ctx.clock(), ctx.config.collector.rollup_interval_s)
    busy: list[date] | None = None

    def task(con: duckdb.DuckDBPyConnection) -> int:
        nonlocal busy
        if busy is None:
            busy = epoch_dates(ctx.writer.marked_days) if ctx.writer is not None else []
            if ctx.writer is not None:
                ctx.writer.marked_days.clear()  # the next commit re-flags the days it touches
        return roll_dirty_days(con, ctx.clock(), limit=ROLLUP_DAYS_PER_TASK, skip=busy)

    total = 0
    while True:
        n = ctx.store.run_write(task)
        total += n
        if n < ROLLUP_DAYS_PER_TASK:
            return total


def retention_now(ctx: CollectorContext) -> None:
    """Apply retention: to the local file, and with a lake to the lake's tables by the leader (the
    local calls are then the shipping buffer, and what retention would drop is refused at ingest)."""
    settings = ctx.config.retention
    if ctx.lake is not None:
        if ctx.is_leader:
            ctx.lake.apply_retention(ctx.clock())
        settings = settings.model_copy(update={"calls_days": None, "rollup_days": None})
    ctx.store.run_write(lambda con: apply_retention(con, ctx.clock(), settings))


def safely(fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn`` as a scheduled job: a failure is logged, never raised into the scheduler."""

    def job() -> None:
        try:
            fn()
        except Exception:
            log.exception("scheduled job failed")

    return job


def setup(ctx: CollectorContext) -> None:
    settings = ctx.config.collector
    common = {"max_instances": 1, "coalesce": True}
    ctx.scheduler.add_job(
        safely(lambda: rollup_now(ctx)),
        "interval",
        seconds=settings.rollup_interval_s,
        id="spendscope.rollups",
        **common,
    )
    ctx.scheduler.add_job(
        safely(lambda: retention_now(ctx)),
        "interval",
        hours=1,
        id="spendscope.retention",
        **common,
    )


COMPONENT = Component("core", ENDPOINTS, "spendscope.collector.migrations", setup)
