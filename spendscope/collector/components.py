"""The explicit list of optional collector components.

Each named module exposes ``setup(ctx: CollectorContext) -> None``, called once at start, before the
Starlette app is built, to add routes (``ctx.routes``) and scheduler jobs (``ctx.scheduler``).
"""

from __future__ import annotations

__all__ = ["COMPONENTS"]

COMPONENTS: list[str] = [
    "spendscope.collector.insights",
    "spendscope.collector.sync",
    "spendscope.collector.alerts",
]
