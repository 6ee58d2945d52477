"""Process lifecycle: build the context, start the writer and scheduler, serve, shut down cleanly.

On SIGTERM or SIGINT uvicorn stops accepting connections and lets in-flight requests finish (each
waits for its commit); then the lifespan exit stops the scheduler, drains and commits the writer's
queue, checkpoints DuckDB and closes the file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from starlette.applications import Starlette

from spendscope.collector import components
from spendscope.collector.app import create_app
from spendscope.collector.config import Config
from spendscope.collector.connections import guarded_protocol
from spendscope.collector.context import CollectorContext, utc_now
from spendscope.collector.core import rollup_now, safely
from spendscope.collector.ingest import Writer
from spendscope.collector.lake.replica import LakeReplica, check_data_path
from spendscope.collector.lake.settings import LakeSettings, default_replica
from spendscope.collector.policy import is_loopback
from spendscope.collector.pricer import Pricer
from spendscope.collector.reprice import record_price_version
from spendscope.collector.rollups import roll_dirty_days
from spendscope.collector.store import Store
from spendscope.collector.warmup import warm_up
from spendscope.collector.workers import DecodePool, auto_workers
from spendscope.pricing import PriceDataError
from spendscope.pricing.build import PriceSources, build_price_table

__all__ = [
    "JsonLogFormatter",
    "build_context",
    "configure_logging",
    "default_duckdb_threads",
    "open_lake",
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
    settings = config.collector
    store = Store(
        settings.db_path,
        threads=settings.duckdb_threads or default_duckdb_threads(),
        memory_limit=settings.duckdb_memory_limit,
        checkpoint_threshold=settings.duckdb_checkpoint_threshold,
    )
    components.migrate(store)
    sources = PriceSources.load(config.pricing.overrides, config.pricing_extra_tables)
    table = build_price_table(sources)
    for hidden in table.shadowed():
        if hidden.fields:  # an extra table disagrees with the reviewed table: say so at every start
            log.warning("%s", hidden.describe())
    record_price_version(store.connection, table, clock())
    scheduler = BackgroundScheduler(timezone="UTC")
    ctx = CollectorContext(config=config, store=store, prices=table, scheduler=scheduler, clock=clock)
    ctx.pricer = Pricer(table)
    ctx.price_sources = sources  # the decode workers build the same table from it
    ctx.writer = Writer(
        store,
        max_queue_spans=settings.max_queue_spans,
        batch_spans=settings.writer_batch_spans,
        linger_s=settings.writer_linger_ms / 1000,
    )
    store.attach_writer(ctx.writer)
    if config.lake is not None:
        ctx.lake = open_lake(config.lake, ctx)
    for part in components.load():
        if part.setup is not None:
            part.setup(ctx)
    return ctx


def open_lake(settings: LakeSettings, ctx: CollectorContext) -> LakeReplica:
    """This replica's side of the lake: a writable data path and a replica name no live process
    uses are checked now (clear errors); an unreachable catalog is retried in the background."""
    check_data_path(settings.data_path)
    writer = ctx.writer
    lake = LakeReplica(
        settings,
        ctx.store,
        settings.replica or default_replica(ctx.config.collector.port),
        retention=ctx.config.retention,
        rows_committed=lambda: writer.rows_committed if writer is not None else 0,
    )
    lake.first_contact()
    return lake


def _raise_open_file_limit() -> None:
    """Every connection is a file descriptor: use all the process may have, not a low soft limit."""
    try:
        import resource  # noqa: PLC0415 (POSIX only)

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else hard
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def default_duckdb_threads() -> int:
    """Half the cores, at least one: under load the decode workers keep the other half busy.

    DuckDB's default (every core) made its threads compete with the workers: on 2 cores ingest
    measured 22-24k spans/s with 2 threads and 28-31k with 1, and a 512-row insert gains nothing
    from a second thread. Queries still get the half, and all of it while ingest is idle.
    """
    return max(1, (os.cpu_count() or 1) // 2)


def _start_decode_pool(ctx: CollectorContext) -> None:
    settings = ctx.config.collector
    n = settings.decode_workers if settings.decode_workers is not None else auto_workers()
    if n <= 0:
        return
    assert ctx.price_sources is not None
    ctx.decode_pool = DecodePool(n, ctx.price_sources)
    log.info("decoding in %d worker process(es)", n)


def start(ctx: CollectorContext) -> None:
    assert ctx.writer is not None and ctx.pricer is not None
    _start_decode_pool(ctx)
    ctx.writer.start()
    pricer = ctx.pricer
    # In the writer thread, so that the collector answers at once while it runs.
    ctx.writer.submit(lambda con: warm_up(pricer, con))
    ctx.scheduler.start()
    if ctx.lake is not None:
        ctx.lake.start()
    # Roll up what an earlier run left dirty, off the request path.
    ctx.scheduler.add_job(safely(lambda: rollup_now(ctx)), id="spendscope.rollups.startup")


def shutdown(ctx: CollectorContext) -> None:
    """Stop jobs, drain and commit the queue, checkpoint and close. Idempotent."""
    if ctx.shut_down:
        return
    ctx.shut_down = True
    try:
        if ctx.scheduler.running:
            ctx.scheduler.shutdown(wait=True)
    except Exception:
        log.exception("scheduler shutdown failed")
    pool, ctx.decode_pool = ctx.decode_pool, None
    if pool is not None:
        pool.shutdown()
    if ctx.writer is not None:
        pending = ctx.writer.pending_spans
        if not ctx.writer.stop(timeout=120):
            log.error("writer did not finish draining within 120 s")
        log.info("writer drained (%d spans were queued at shutdown)", pending)
    ctx.store.attach_writer(None)
    if ctx.lake is not None:
        ctx.lake.stop()  # ships what is left (bounded) and gives the lease up
    else:
        try:
            roll_dirty_days(ctx.store.connection, ctx.clock())
        except Exception:
            log.exception("final rollup failed")
    ctx.store.close()
    log.info("collector stopped; database checkpointed and closed")


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    configure_logging(config.collector.log_level)
    settings = config.collector
    if not is_loopback(settings.host) and not config.token and not settings.allow_unauthenticated:
        log.error(
            "refusing to listen on %s without a token: anyone who can reach it could read spend and "
            "change alerts. Set SPENDSCOPE_TOKEN, bind to 127.0.0.1, or set "
            "collector.allow_unauthenticated = true if something else guards this address",
            settings.host,
        )
        return 2
    _raise_open_file_limit()
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
        # Requests in flight are limited by the request policy (which always answers /healthz);
        # idle and slow connections are closed by the protocol's header deadline.
        limit_concurrency=None,
        http=guarded_protocol(settings.header_timeout_s),
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
