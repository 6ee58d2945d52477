"""The sync component: its endpoints, its migrations, and the scheduled job when a key is set."""

from __future__ import annotations

import logging
from datetime import timedelta

from spendscope.collector.components import Component
from spendscope.collector.context import CollectorContext
from spendscope.collector.core import safely
from spendscope.collector.sync import bill_refresh
from spendscope.collector.sync.job import SyncJob
from spendscope.collector.sync.routes import ENDPOINTS

__all__ = ["COMPONENT"]

log = logging.getLogger("spendscope.sync")


def setup(ctx: CollectorContext) -> None:
    settings = ctx.config.sync
    job = SyncJob(
        settings,
        ctx.shared.run_write,
        lambda: ctx.prices,
        clock=lambda: ctx.clock().timestamp(),
        after_costs=lambda: bill_refresh.refresh(ctx),
    )
    ctx.sync = job
    if ctx.lake is None:
        # The bill's prices as last read, against the price files in force now (they may have
        # changed since): new calls are priced with them from the first one, stored unpriced calls
        # at once. The writer thread has not started yet: this runs on its connection directly.
        found = bill_refresh.refresh(ctx, write=lambda fn: fn(ctx.store.connection))
        if found["models"]:
            log.info(
                "prices from the bill: %d model(s) no price file knows; %d stored call(s) priced now",
                found["models"],
                found["calls_priced"],
            )
    else:
        # Every replica learns the bill the leader's sync stored in the lake, as often as it rolls up.
        ctx.scheduler.add_job(
            safely(lambda: bill_refresh.follow(ctx)),
            "interval",
            seconds=ctx.config.collector.rollup_interval_s,
            id="spendscope.bill",
            max_instances=1,
            coalesce=True,
            next_run_time=ctx.clock() + timedelta(seconds=1),
        )
    if not settings.configured:
        why = "disabled in [sync]" if not settings.enabled else f"{settings.admin_key_env} is not set"
        log.info("usage/costs sync not scheduled: %s", why)
        return
    first = ctx.clock() + timedelta(seconds=2) if settings.on_start else None

    def scheduled() -> None:
        if ctx.is_leader:  # with a lake, only the leader syncs on schedule
            job.run_scheduled()

    ctx.scheduler.add_job(
        scheduled,
        "interval",
        seconds=settings.interval_s,
        id="spendscope.sync",
        max_instances=1,
        coalesce=True,
        **({"next_run_time": first} if first is not None else {}),
    )
    log.info(
        "usage/costs sync every %.0f s from %s (%s)",
        settings.interval_s,
        settings.base_url,
        ", ".join(settings.endpoints),
    )


COMPONENT = Component("sync", ENDPOINTS, "spendscope.collector.sync.migrations", setup)
