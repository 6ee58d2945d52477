"""What every collector component is handed at start: config, store, prices, scheduler, clock, routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spendscope.collector.config import Config
from spendscope.collector.store import Store

if TYPE_CHECKING:
    from spendscope.collector.ingest import Writer
    from spendscope.collector.pricer import Pricer
    from spendscope.pricing import PriceTable

__all__ = ["CollectorContext", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CollectorContext:
    """Shared state of one collector process.

    Components (``components.COMPONENTS``) get it in ``setup(ctx)``: they append Starlette routes to
    ``routes`` before the app is built, add jobs to ``scheduler``, read their own config section from
    ``config`` (validated at load), read with ``store.cursor()`` and write with ``store.run_write(fn)``.
    """

    config: Config
    store: Store
    prices: PriceTable
    scheduler: Any  # apscheduler BackgroundScheduler (untyped library)
    clock: Callable[[], datetime] = utc_now
    routes: list[Any] = field(default_factory=list)
    pricer: Pricer | None = None
    writer: Writer | None = None
    started_at: datetime = field(default_factory=utc_now)
    extras: dict[str, Any] = field(default_factory=dict)  # room for components to share state
