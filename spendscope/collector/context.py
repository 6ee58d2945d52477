"""What every collector component is handed at start: config, store, prices, scheduler, clock, and
the typed handles of the parts other parts talk to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from spendscope.collector.config import Config
from spendscope.collector.store import Store

if TYPE_CHECKING:
    from spendscope.collector.alerts.engine import AlertEngine
    from spendscope.collector.ingest import Writer
    from spendscope.collector.lake.replica import LakeReplica, LakeState
    from spendscope.collector.pricer import Pricer
    from spendscope.collector.sync.job import SyncJob
    from spendscope.collector.workers import DecodePool
    from spendscope.pricing import PriceTable
    from spendscope.pricing.build import PriceSources

__all__ = ["CollectorContext", "RequestCounts", "utc_now"]


class RequestCounts(Protocol):
    """What the OTLP receiver counts (for ``/healthz`` and the metrics)."""

    requests: int
    refused: int

    @property
    def bodies_in_memory(self) -> int: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CollectorContext:
    """Shared state of one collector process.

    Components (``components.load()``) get it in their ``setup(ctx)``: they read their own config
    section from ``config`` (validated at load), add jobs to ``scheduler``, read with
    ``store.cursor()``, write with ``store.run_write(fn)``, and set their own handle below for their
    endpoints to reach.
    """

    config: Config
    store: Store
    prices: PriceTable
    scheduler: Any  # apscheduler BackgroundScheduler (untyped library)
    clock: Callable[[], datetime] = utc_now
    pricer: Pricer | None = None
    price_sources: PriceSources | None = None  # what ``prices`` was built from
    writer: Writer | None = None
    started_at: datetime = field(default_factory=utc_now)
    traces: RequestCounts | None = None  # the OTLP receiver, for its counters
    decode_pool: DecodePool | None = None
    sync: SyncJob | None = None
    alerts: AlertEngine | None = None
    lake: LakeReplica | None = None  # with a [lake] section: this replica's side of the shared store
    shut_down: bool = False  # set once shutdown() has begun: background work stops

    @property
    def is_leader(self) -> bool:
        """Whether this process runs the singletons (sync, alerts, rollups, retention, compaction):
        always without a lake; with one, while it holds the lease."""
        return self.lake is None or self.lake.is_leader

    @property
    def shared(self) -> Store | LakeState:
        """Where the tables every replica shares live (sync, alerts): the lake, else the local file."""
        return self.store if self.lake is None else self.lake.state
