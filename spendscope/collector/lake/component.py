"""The lake component: ``GET /api/v1/lake``, ``POST /api/v1/lake/compact`` and the leader's
scheduled compaction. The replica itself is opened by the server before the components start
(``server.open_lake``), because the sync and the alerts need to know where their tables live."""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

from spendscope.collector.components import Component
from spendscope.collector.context import CollectorContext
from spendscope.collector.lake.replica import LakeReplica
from spendscope.collector.web import ApiError, Endpoint, Params

__all__ = ["COMPACTION_INTERVAL_S", "COMPACT_SCHEMA", "COMPONENT", "LAKE_STATUS_SCHEMA", "NO_LAKE"]

log = logging.getLogger("spendscope.collector.lake")

# The leader merges the shipments' files this often (each shipment writes at least one file).
COMPACTION_INTERVAL_S = 600

_TIME = {"type": ["string", "null"], "format": "date-time"}
LAKE_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "replica",
        "leader",
        "unshipped_rows",
        "last_ship_at",
        "replicas",
        "files",
        "last_compaction_at",
    ],
    "properties": {
        "lake": {"type": "boolean", "description": "false: a collector without a lake (one DuckDB file)"},
        "replica": {"type": ["string", "null"], "description": "this replica's name"},
        "leader": {"type": "boolean", "description": "whether this replica runs the singletons now"},
        "leader_replica": {"type": ["string", "null"], "description": "the replica that leads"},
        "unshipped_rows": {"type": "integer", "description": "acknowledged rows not yet in the lake"},
        "last_ship_at": _TIME,
        "replicas": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "replica": {"type": "string"},
                    "shipped_rows": {"type": "integer", "description": "rows it stored in the lake"},
                    "last_ship_at": _TIME,
                },
            },
        },
        "files": {"type": ["integer", "null"], "description": "live data files of the lake"},
        "last_compaction_at": _TIME,
        "reachable": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
    },
}


COMPACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ok", "files_before", "files_after", "duration_s"],
    "properties": {
        "ok": {"type": "boolean"},
        "files_before": {"type": "integer", "description": "live data files before"},
        "files_after": {"type": "integer", "description": "live data files after"},
        "duration_s": {"type": "number"},
    },
}


def _lake(ctx: CollectorContext) -> LakeReplica:
    if ctx.lake is None:
        raise ApiError(404, "this collector has no lake: add a [lake] section or set SPENDSCOPE_LAKE_CATALOG")
    return ctx.lake


# The status of a collector without a lake: it runs the singletons itself and ships nothing.
NO_LAKE: dict[str, Any] = {
    "lake": False,
    "replica": None,
    "leader": True,
    "leader_replica": None,
    "unshipped_rows": 0,
    "last_ship_at": None,
    "replicas": [],
    "files": None,
    "last_compaction_at": None,
}


async def status(ctx: CollectorContext, p: Params) -> dict[str, Any]:
    if ctx.lake is None:
        return dict(NO_LAKE)
    result: dict[str, Any] = await run_in_threadpool(ctx.lake.status)
    return result


async def compact(ctx: CollectorContext, p: Params) -> dict[str, Any]:
    lake = _lake(ctx)
    result: dict[str, Any] = await run_in_threadpool(lake.compact)
    return {"ok": True, **result}


def setup(ctx: CollectorContext) -> None:
    lake = ctx.lake
    if lake is None:
        return

    def job() -> None:
        if ctx.shut_down or not ctx.is_leader:
            return
        try:
            lake.compact()
        except Exception:
            log.exception("lake compaction failed")

    ctx.scheduler.add_job(
        job,
        "interval",
        seconds=COMPACTION_INTERVAL_S,
        id="spendscope.lake.compaction",
        max_instances=1,
        coalesce=True,
    )


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/v1/lake",
        status,
        summary="This replica and the lake: leader, shipping, replicas, files",
        response=LAKE_STATUS_SCHEMA,
        tag="operations",
    ),
    Endpoint(
        "POST",
        "/api/v1/lake/compact",
        compact,
        summary="Compact the lake now: merge small files, expire old snapshots, remove their files",
        response=COMPACT_SCHEMA,
        errors={404: "no [lake] section", 503: "the lake is not reachable yet"},
        tag="operations",
    ),
)

COMPONENT = Component("lake", ENDPOINTS, None, setup)
