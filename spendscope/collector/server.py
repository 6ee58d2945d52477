"""Process lifecycle: build the context, start the writer and scheduler, serve, shut down cleanly.

On SIGTERM or SIGINT uvicorn stops accepting connections and lets in-flight requests finish (each
waits for its commit); then the lifespan exit stops the scheduler, drains and commits the writer's
queue, checkpoints DuckDB and closes the file.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import anyio
import duckdb
from starlette.applications import Starlette

from spendscope.collector.app import create_app
from spendscope.collector.components import COMPONENTS
from spendscope.collector.config import Config
from spendscope.collector.context import CollectorContext, utc_now
from spendscope.collector.ingest import Writer, epoch_dates
from spendscope.collector.pricer import Pricer
from spendscope.collector.reprice import record_price_version
from spendscope.collector.rollups import apply_retention, roll_dirty_days
from spendscope.collector.store import Store
from spendscope.collector.warmup import warm_up

__all__ = [
    "JsonLogFormatter",
    "build_context",
    "configure_logging",
    "default_duckdb_threads",
    "rollup_now",
    "run",
    "shutdown",
    "start",
]

log = logging.getLogger("spendscope.collector")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: easy for journald, Docker and log shippers to parse."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("apscheduler").setLevel("WARNING")


def build_context(config: Config, clock: Callable[[], datetime] = utc_now) -> CollectorContext:
    """Open the store, apply migrations, load prices and run each component's ``setup``."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from spendscope.pricing import PriceTable

    settings = config.collector
    store = Store(
        settings.db_path,
        threads=settings.duckdb_threads or default_duckdb_threads(),
        memory_limit=settings.duckdb_memory_limit,
        checkpoint_threshold=settings.duckdb_checkpoint_threshold,
    )
    store.migrate()
    table = PriceTable.default()
    if config.pricing.overrides:
        table = table.with_overrides(list(config.pricing.overrides))
    record_price_version(store.connection, table, clock())
    scheduler = BackgroundScheduler(timezone="UTC")
    ctx = CollectorContext(config=config, store=store, prices=table, scheduler=scheduler, clock=clock)
    ctx.pricer = Pricer(table)
    ctx.writer = Writer(
        store,
        max_queue_spans=settings.max_queue_spans,
        batch_spans=settings.writer_batch_spans,
        linger_s=settings.writer_linger_ms / 1000,
    )
    store.attach_writer(ctx.writer)
    scheduler.add_job(
        lambda: _safe(lambda: rollup_now(ctx)),
        "interval",
        seconds=settings.rollup_interval_s,
        id="spendscope.rollups",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        lambda: _safe(lambda: store.run_write(lambda con: apply_retention(con, clock(), config.retention))),
        "interval",
        hours=1,
        id="spendscope.retention",
        max_instances=1,
        coalesce=True,
    )
    for name in COMPONENTS:
        importlib.import_module(name).setup(ctx)
    return ctx


def default_duckdb_threads() -> int:
    """Half the cores, at least one: under load the decode workers keep the other half busy.

    DuckDB's default (every core) made its threads compete with the workers: on 2 cores ingest
    measured 22-24k spans/s with 2 threads and 28-31k with 1, and a 512-row insert gains nothing
    from a second thread. Queries still get the half, and all of it while ingest is idle.
    """
    return max(1, (os.cpu_count() or 1) // 2)


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


def _safe(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        log.exception("scheduled job failed")


def _start_decode_pool(ctx: CollectorContext) -> None:
    from spendscope.collector.workers import auto_workers, make_pool

    settings = ctx.config.collector
    n = settings.decode_workers if settings.decode_workers is not None else auto_workers()
    if n <= 0:
        return

    def restart() -> None:
        old = ctx.extras.get("decode_pool")
        ctx.extras["decode_pool"] = make_pool(n, ctx.config.pricing.overrides)
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    ctx.extras["restart_decode_pool"] = restart
    ctx.extras["decode_pool"] = make_pool(n, ctx.config.pricing.overrides)
    log.info("decoding in %d worker process(es)", n)


def start(ctx: CollectorContext) -> None:
    assert ctx.writer is not None and ctx.pricer is not None
    _start_decode_pool(ctx)
    ctx.writer.start()
    pricer = ctx.pricer
    # In the writer thread, so that the collector answers at once while it runs.
    ctx.writer.submit(lambda con: warm_up(pricer, con))
    ctx.scheduler.start()
    # Roll up what an earlier run left dirty, off the request path.
    ctx.scheduler.add_job(
        lambda: _safe(lambda: rollup_now(ctx)),
        id="spendscope.rollups.startup",
    )


def shutdown(ctx: CollectorContext) -> None:
    """Stop jobs, drain and commit the queue, checkpoint and close. Idempotent."""
    if ctx.extras.get("shut_down"):
        return
    ctx.extras["shut_down"] = True
    try:
        if ctx.scheduler.running:
            ctx.scheduler.shutdown(wait=True)
    except Exception:
        log.exception("scheduler shutdown failed")
    pool = ctx.extras.pop("decode_pool", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
    if ctx.writer is not None:
        pending = ctx.writer.pending_spans
        if not ctx.writer.stop(timeout=120):
            log.error("writer did not finish draining within 120 s")
        log.info("writer drained (%d spans were queued at shutdown)", pending)
    ctx.store.attach_writer(None)
    try:
        roll_dirty_days(ctx.store.connection, ctx.clock())
    except Exception:
        log.exception("final rollup failed")
    ctx.store.close()
    log.info("collector stopped; database checkpointed and closed")


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    import uvicorn

    from spendscope.pricing import PriceDataError

    configure_logging(config.collector.log_level)
    try:
        ctx = build_context(config)
    except PriceDataError as exc:
        log.error("%s: %s", config.path or "config", exc)
        return 2

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        start(ctx)
        await anyio.sleep(0)  # loads anyio's event-loop backend now rather than in the first request
        log.info(
            "collector listening on http://%s:%d (db %s, price table %s)",
            config.collector.host,
            config.collector.port,
            config.collector.db_path,
            ctx.prices.version,
        )
        try:
            yield
        finally:
            if ctx.writer is not None:
                ctx.writer.stop_accepting()
            shutdown(ctx)

    app = create_app(ctx, lifespan=lifespan)
    uv_config = uvicorn.Config(
        app,
        host=config.collector.host,
        port=config.collector.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        limit_concurrency=256,
        server_header=False,
    )
    server = uvicorn.Server(uv_config)
    # uvicorn handles SIGTERM/SIGINT itself, then re-raises the signal once it has shut down; with
    # these handlers in place that re-raise is a no-op and the process exits 0 after the cleanup.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    try:
        server.run()
    finally:
        shutdown(ctx)
    return 0 if server.started else 1
