"""The collector's components: each owns its endpoints, its migrations and its start-up.

A component module (listed in :data:`COMPONENTS`) exposes ``COMPONENT``. The core (the query API,
``calls`` and the rollups) is one too. Components are imported only when a collector is built, so a
command-line tool that imports ``spendscope.collector.sync.cli`` loads none of the server.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spendscope.collector.context import CollectorContext
    from spendscope.collector.store import Store
    from spendscope.collector.web import Endpoint

__all__ = ["COMPONENTS", "Component", "load", "migrate"]


@dataclass(frozen=True, slots=True)
class Component:
    """``endpoints`` are served under the app's auth; ``migrations`` names the package holding the
    component's ``NNN_name.sql`` files (numbers are one sequence across all components);
    ``setup(ctx)`` runs once at start, after the migrations, to read the component's config
    section, schedule its jobs and set its handle on the context."""

    name: str
    endpoints: Sequence[Endpoint] = ()
    migrations: str | None = None
    setup: Callable[[CollectorContext], None] | None = None


COMPONENTS: tuple[str, ...] = (
    "spendscope.collector.core",
    "spendscope.collector.insights",
    "spendscope.collector.sync.component",
    "spendscope.collector.alerts.component",
    "spendscope.collector.lake.component",
    "spendscope.collector.prometheus",
    "spendscope.collector.openapi",
)


def load() -> list[Component]:
    return [importlib.import_module(name).COMPONENT for name in COMPONENTS]


def migrate(store: Store) -> list[str]:
    """Apply every component's migrations not yet applied to ``store``; their names."""
    return store.migrate([c.migrations for c in load() if c.migrations])
