"""The alerts component: endpoints, migrations, the evaluation tick and the delivery worker."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from spendscope.collector.alerts.delivery import DeliveryWorker
from spendscope.collector.alerts.engine import AlertEngine
from spendscope.collector.alerts.routes import ENDPOINTS
from spendscope.collector.components import Component
from spendscope.collector.context import CollectorContext

__all__ = ["COMPONENT"]

log = logging.getLogger("spendscope.collector.alerts")


def setup(ctx: CollectorContext) -> None:
    config = ctx.config.alerts
    # With a lake, state and outbox are the lake's (every replica sees them) and only the leader
    # evaluates and sends: a new leader carries on from the stored state, neither re-sending nor
    # forgetting.
    worker = DeliveryWorker(
        ctx.shared,
        config.channels,
        ctx.clock,
        should_stop=lambda: ctx.shut_down or ctx.store.closed,
        active=lambda: ctx.is_leader,
    )
    engine = AlertEngine(config, ctx.shared, ctx.clock, worker)
    ctx.alerts = engine

    def tick() -> None:
        if ctx.shut_down or not ctx.is_leader:
            return
        try:
            engine.tick()
        except Exception:  # a failed tick must not kill the scheduler job
            log.exception("alert evaluation failed")

    if config.rules:
        ctx.scheduler.add_job(
            tick,
            "interval",
            seconds=config.interval_s,
            id="spendscope.alerts",
            max_instances=1,
            coalesce=True,
            # First evaluation right after start, so a restart notices resolutions without waiting.
            next_run_time=datetime.now(UTC) + timedelta(seconds=2),
        )
    if config.channels:
        worker.start()
    log.info("alerts: %d rule(s), %d channel(s)", len(config.rules), len(config.channels))


COMPONENT = Component("alerts", ENDPOINTS, "spendscope.collector.alerts.migrations", setup)
