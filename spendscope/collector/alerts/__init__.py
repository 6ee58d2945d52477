"""Alerts: rules and channels from the collector's config, evaluated every minute.

``setup(ctx)`` takes its ``[alerts]`` section (checked by the config loader: a bad rule or channel
stops the start with file, key and problem), adds the ``/api/v1/alerts`` routes, schedules the
evaluation tick and starts the delivery worker. See docs/alerts.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spendscope.collector.context import CollectorContext

__all__ = ["setup"]

log = logging.getLogger("spendscope.collector.alerts")


def setup(ctx: CollectorContext) -> None:
    from spendscope.collector.alerts.delivery import DeliveryWorker
    from spendscope.collector.alerts.engine import AlertEngine
    from spendscope.collector.alerts.routes import alert_routes

    config = ctx.config.alerts
    worker = DeliveryWorker(
        ctx.store,
        config.channels,
        ctx.clock,
        should_stop=lambda: bool(ctx.extras.get("shut_down") or ctx.store.closed),
    )
    engine = AlertEngine(config, ctx.store, ctx.clock, worker)
    ctx.extras["alerts"] = engine
    ctx.routes.extend(alert_routes(engine))

    def tick() -> None:
        if ctx.extras.get("shut_down"):
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
