"""The sync component: its endpoints, its migrations, and the scheduled job when a key is set."""

from __future__ import annotations

import logging
from datetime import timedelta

from spendscope.collector.components import Component
from spendscope.collector.context import CollectorContext
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
    )
    ctx.sync = job
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
