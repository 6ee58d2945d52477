"""HTTP API for alerts: what is firing and what fired, deliveries, test notifications, silences."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import duckdb
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from spendscope.collector import schemas as s
from spendscope.collector.alerts.engine import AlertEngine
from spendscope.collector.alerts.state import event_payload, next_id, ts
from spendscope.collector.context import CollectorContext
from spendscope.collector.durations import Duration
from spendscope.collector.web import ApiError, Choice, Endpoint, Limit, Params

__all__ = ["ENDPOINTS", "list_alerts", "list_deliveries"]

_STATES = {"firing": ("firing",), "resolved": ("resolved",), "all": ("pending", "firing", "resolved")}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def list_alerts(
    cur: duckdb.DuckDBPyConnection, state: str, now: datetime, limit: int = 500
) -> list[dict[str, Any]]:
    """Alert instances in ``state`` with a per-instance delivery summary of the current incident."""
    states = _STATES[state]
    marks = ", ".join("?" for _ in states)
    rows = cur.execute(
        f"""
        WITH summary AS (
            SELECT e.rule, e.scope_key, e.incident,
                   count(*) FILTER (WHERE d.status = 'delivered') AS delivered,
                   count(*) FILTER (WHERE d.status = 'pending') AS pending,
                   count(*) FILTER (WHERE d.status = 'failed') AS failed,
                   arg_max(d.last_error, d.last_attempt_at) FILTER (WHERE d.last_error IS NOT NULL)
                       AS last_error
            FROM alert_events e JOIN alert_deliveries d USING (event_id)
            WHERE e.event <> 'test'
            GROUP BY ALL
        )
        SELECT s.rule, s.scope_key, s.scope, s.kind, s.state, s.severity, s.value, s.threshold,
               epoch_us(s.started_at), epoch_us(s.resolved_at), epoch_us(s.last_notified_at), s.message,
               s.incident, epoch_us(s.last_evaluated_at),
               coalesce(m.delivered, 0), coalesce(m.pending, 0), coalesce(m.failed, 0), m.last_error,
               EXISTS (SELECT 1 FROM alert_silences z WHERE z.rule = s.rule
                       AND (z.scope_key IS NULL OR z.scope_key = s.scope_key) AND z.expires_at > ?)
        FROM alert_state s
        LEFT JOIN summary m ON m.rule = s.rule AND m.scope_key = s.scope_key AND m.incident = s.incident
        WHERE s.state IN ({marks})
        ORDER BY (s.state = 'firing') DESC, coalesce(s.resolved_at, s.started_at) DESC NULLS LAST, s.rule
        LIMIT ?
        """,
        [now, *states, limit],
    ).fetchall()
    out = []
    for r in rows:
        out.append(
            {
                "rule": r[0],
                "scope_key": r[1],
                "scope": json.loads(r[2]) if isinstance(r[2], str) else r[2],
                "kind": r[3],
                "state": r[4],
                "severity": r[5],
                "value": r[6],
                "threshold": r[7],
                "started_at": _iso(ts(r[8])),
                "resolved_at": _iso(ts(r[9])),
                "last_notified_at": _iso(ts(r[10])),
                "message": r[11],
                "incident": r[12],
                "last_evaluated_at": _iso(ts(r[13])),
                "deliveries": {"delivered": r[14], "pending": r[15], "failed": r[16], "last_error": r[17]},
                "silenced": bool(r[18]),
            }
        )
    return out


def list_deliveries(cur: duckdb.DuckDBPyConnection, status: str | None, limit: int) -> list[dict[str, Any]]:
    where = "WHERE d.status = ?" if status else ""
    rows = cur.execute(
        f"""
        SELECT d.delivery_id, d.rule, d.scope_key, d.channel, e.event, d.status, d.attempts,
               epoch_us(d.created_at), epoch_us(d.last_attempt_at), epoch_us(d.next_attempt_at),
               epoch_us(d.delivered_at), d.last_error
        FROM alert_deliveries d JOIN alert_events e USING (event_id)
        {where} ORDER BY d.delivery_id DESC LIMIT ?
        """,
        [status, limit] if status else [limit],
    ).fetchall()
    keys = (
        "delivery_id",
        "rule",
        "scope_key",
        "channel",
        "event",
        "status",
        "attempts",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    )
    return [
        {k: (_iso(ts(v)) if k.endswith("_at") else v) for k, v in zip(keys, r, strict=True)} for r in rows
    ]


def _engine(ctx: CollectorContext) -> AlertEngine:
    if ctx.alerts is None:
        raise ApiError(503, "alerts are not set up in this collector")
    return ctx.alerts


class AlertsParams(Params):
    state: Annotated[str, Choice(_STATES)] = "firing"
    limit: Annotated[int, Limit()] = 500


async def alerts(ctx: CollectorContext, p: AlertsParams) -> dict[str, Any]:
    now = _engine(ctx).clock()
    rows = await run_in_threadpool(ctx.store.read, lambda cur: list_alerts(cur, p.state, now, p.limit))
    # Exactly the contract's shape; the engine's own health is on /api/v1/alerts/status.
    return {"rows": rows}


async def status(ctx: CollectorContext, p: Params) -> dict[str, Any]:
    engine = _engine(ctx)
    failed = await run_in_threadpool(ctx.store.read, lambda cur: list_deliveries(cur, "failed", 20))
    tick = engine.last_tick
    return {
        "rules": [
            {"name": r.name, "kind": r.kind, "severity": r.severity, "channels": list(r.channels)}
            for r in engine.config.rules
        ],
        "channels": [{"name": c.name, "type": c.type} for c in engine.config.channels.values()],
        "interval_s": engine.config.interval_s,
        "last_evaluated_at": _iso(tick.at) if tick else None,
        "rule_errors": tick.errors if tick else {},
        "failed_deliveries": failed,
    }


class DeliveriesParams(Params):
    status: Annotated[str | None, Choice(("pending", "delivered", "failed"))] = None
    limit: Annotated[int, Limit()] = 100


async def deliveries(ctx: CollectorContext, p: DeliveriesParams) -> dict[str, Any]:
    rows = await run_in_threadpool(ctx.store.read, lambda cur: list_deliveries(cur, p.status, p.limit))
    return {"rows": rows}


class RuleParams(Params):
    rule: str = Field(max_length=200, description="the rule's name")


async def test(ctx: CollectorContext, p: RuleParams) -> dict[str, Any]:
    engine = _engine(ctx)
    rule = engine.config.rule(p.rule)
    if rule is None:
        raise ApiError(404, f"no rule named {p.rule!r}", ok=False)
    if not rule.channels:
        raise ApiError(409, f"rule {p.rule!r} has no channels", ok=False)
    event = await run_in_threadpool(engine.test_event, rule)
    return {"ok": True, "channels": list(rule.channels), "event": event_payload(event)}


_SILENCE_KEYS = ("silence_id", "rule", "scope_key", "reason", "created_at", "expires_at")


async def silences(ctx: CollectorContext, p: Params) -> dict[str, Any]:
    now = _engine(ctx).clock()
    rows = await run_in_threadpool(
        ctx.store.read,
        lambda cur: cur.execute(
            "SELECT silence_id, rule, scope_key, reason, epoch_us(created_at), epoch_us(expires_at) "
            "FROM alert_silences WHERE expires_at > ? ORDER BY silence_id",
            [now],
        ).fetchall(),
    )
    return {
        "rows": [
            {k: (_iso(ts(v)) if k.endswith("_at") else v) for k, v in zip(_SILENCE_KEYS, r, strict=True)}
            for r in rows
        ]
    }


class SilenceBody(Params):
    rule: str = Field(max_length=200, description="the rule to silence")
    scope_key: str | None = Field(None, max_length=4096, description="one scope; null silences every scope")
    # The config's one duration syntax and bounds: a silence of 1e30 seconds is a 400, not a date overflow.
    duration: Duration = Field(3600, description="seconds, or a duration such as 90m, 1.5h, 2d, 1w")
    reason: str | None = Field(None, max_length=4096)


async def add_silence(ctx: CollectorContext, p: SilenceBody) -> JSONResponse:
    engine = _engine(ctx)
    if engine.config.rule(p.rule) is None:
        raise ApiError(400, f"rule: no rule named {p.rule!r}")
    now = engine.clock()
    expires = now + timedelta(seconds=p.duration)

    def write(con: duckdb.DuckDBPyConnection) -> int:
        con.execute("BEGIN TRANSACTION")
        try:
            silence_id = next_id(con, "alert_silences", "silence_id")
            con.execute(
                "INSERT INTO alert_silences VALUES (?, ?, ?, ?, ?, ?)",
                [silence_id, p.rule, p.scope_key, p.reason, now, expires],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return silence_id

    silence_id = await run_in_threadpool(ctx.shared.run_write, write)
    return JSONResponse(
        {
            "silence_id": silence_id,
            "rule": p.rule,
            "scope_key": p.scope_key,
            "expires_at": expires.isoformat(),
        },
        status_code=201,
    )


class SilenceIdParams(Params):
    silence_id: int = Field(ge=1, lt=1 << 62)


async def delete_silence(ctx: CollectorContext, p: SilenceIdParams) -> dict[str, Any]:
    def write(con: duckdb.DuckDBPyConnection) -> int:
        row = con.execute("DELETE FROM alert_silences WHERE silence_id = ?", [p.silence_id]).fetchone()
        return int(row[0]) if row else 0

    if not await run_in_threadpool(ctx.shared.run_write, write):
        raise ApiError(404, f"no silence {p.silence_id}")
    return {"ok": True}


# --- answers (JSON Schema, for the API document) ---------------------------------------------------

_TEXT = s.nullable(s.STRING)
_WHEN = s.nullable(s.TIME)
_VALUE = s.nullable(s.NUMBER)
_SCOPE: s.Schema = {"type": "object", "additionalProperties": s.STRING}
_ALERTS = s.rows(
    s.obj(
        {
            "rule": s.STRING,
            "scope_key": s.STRING,
            "scope": _SCOPE,
            "kind": s.STRING,
            "state": {"enum": ["pending", "firing", "resolved"]},
            "severity": s.STRING,
            "value": _VALUE,
            "threshold": _VALUE,
            "started_at": _WHEN,
            "resolved_at": _WHEN,
            "last_notified_at": _WHEN,
            "message": _TEXT,
            "incident": s.INT,
            "last_evaluated_at": _WHEN,
            "deliveries": s.obj(
                {"delivered": s.COUNT, "pending": s.COUNT, "failed": s.COUNT, "last_error": _TEXT}
            ),
            "silenced": s.BOOL,
        }
    )
)
_DELIVERY = s.obj(
    {
        "delivery_id": s.INT,
        "rule": s.STRING,
        "scope_key": s.STRING,
        "channel": s.STRING,
        "event": s.STRING,
        "status": {"enum": ["pending", "delivered", "failed"]},
        "attempts": s.COUNT,
        "created_at": s.TIME,
    }
    | dict.fromkeys(("last_attempt_at", "next_attempt_at", "delivered_at"), _WHEN)
    | {"last_error": _TEXT}
)
_STATUS = s.obj(
    {
        "rules": s.array(
            s.obj({"name": s.STRING, "kind": s.STRING, "severity": s.STRING, "channels": s.STRINGS})
        ),
        "channels": s.array(s.obj({"name": s.STRING, "type": s.STRING})),
        "interval_s": s.NUMBER,
        "last_evaluated_at": _WHEN,
        "rule_errors": {"type": "object", "additionalProperties": s.STRING},
        "failed_deliveries": s.array(_DELIVERY),
    }
)
_SILENCE = {"silence_id": s.INT, "rule": s.STRING, "scope_key": _TEXT}
_SILENCES = s.rows(s.obj(_SILENCE | {"reason": _TEXT, "created_at": s.TIME, "expires_at": s.TIME}))
_SILENCED = s.obj(_SILENCE | {"expires_at": s.TIME})
_TESTED = s.obj(
    {
        "ok": s.BOOL,
        "channels": s.STRINGS,
        "event": s.obj(
            {
                "event": s.STRING,
                "rule": s.STRING,
                "kind": s.STRING,
                "scope": _SCOPE,
                "scope_key": s.STRING,
                "state": s.STRING,
                "severity": s.STRING,
                "value": _VALUE,
                "threshold": _VALUE,
                "message": _TEXT,
                "started_at": _WHEN,
                "resolved_at": _WHEN,
                "at": s.TIME,
                "incident": s.INT,
                "dedup_key": s.STRING,
            }
        ),
    }
)
_NOT_SET_UP = {503: "alerts are not set up in this collector"}


def _endpoint(
    method: Literal["GET", "POST", "DELETE"],
    path: str,
    handler: Any,
    params: type[Params],
    summary: str,
    response: s.Schema,
    errors: Mapping[int, str] = _NOT_SET_UP,
    status: int = 200,
) -> Endpoint:
    return Endpoint(method, path, handler, params, summary, response, errors, "alerts", status)


ENDPOINTS = (
    _endpoint("GET", "/api/v1/alerts", alerts, AlertsParams, "Alert instances by state", _ALERTS),
    _endpoint("GET", "/api/v1/alerts/status", status, Params, "Rules, channels and evaluation", _STATUS),
    _endpoint(
        "GET",
        "/api/v1/alerts/deliveries",
        deliveries,
        DeliveriesParams,
        "Notification attempts",
        s.rows(_DELIVERY),
        {},
    ),
    _endpoint("GET", "/api/v1/alerts/silences", silences, Params, "Silences in force", _SILENCES),
    _endpoint(
        "POST", "/api/v1/alerts/silences", add_silence, SilenceBody, "Silence a rule", _SILENCED, status=201
    ),
    _endpoint(
        "DELETE",
        "/api/v1/alerts/silences/{silence_id}",
        delete_silence,
        SilenceIdParams,
        "End a silence",
        s.obj({"ok": s.BOOL}),
        {404: "no such silence"},
    ),
    _endpoint(
        "POST",
        "/api/v1/alerts/{rule}/test",
        test,
        RuleParams,
        "Send a test notification of a rule to its channels",
        _TESTED,
        {404: "no such rule", 409: "the rule has no channels", **_NOT_SET_UP},
    ),
)
