"""HTTP API for alerts: what is firing and what fired, deliveries, test notifications, silences."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import duckdb
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spendscope.collector.alerts.engine import AlertEngine
from spendscope.collector.alerts.state import event_payload, ts
from spendscope.collector.durations import parse_duration

__all__ = ["alert_routes", "list_alerts", "list_deliveries"]

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


def _limit(request: Request, default: int = 100) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise ValueError("limit must be an integer between 1 and 10000")
    return int(raw)


Handler = Callable[[Request], Awaitable[Response]]


def alert_routes(engine: AlertEngine) -> list[Route]:
    store = engine.store

    def read(fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        cur = store.cursor()
        try:
            return fn(cur)
        finally:
            cur.close()

    def guard(fn: Handler) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return handler

    async def alerts(request: Request) -> Response:
        state = request.query_params.get("state", "firing")
        if state not in _STATES:
            raise ValueError("state must be firing, resolved or all")
        limit = _limit(request, 500)
        now = engine.clock()
        rows = await run_in_threadpool(read, lambda cur: list_alerts(cur, state, now, limit))
        # Exactly the contract's shape; the engine's own health is on /api/v1/alerts/status.
        return JSONResponse({"rows": rows})

    async def status(request: Request) -> Response:
        failed = await run_in_threadpool(read, lambda cur: list_deliveries(cur, "failed", 20))
        tick = engine.last_tick
        return JSONResponse(
            {
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
        )

    async def deliveries(request: Request) -> Response:
        status = request.query_params.get("status")
        if status not in (None, "pending", "delivered", "failed"):
            raise ValueError("status must be pending, delivered or failed")
        limit = _limit(request)
        rows = await run_in_threadpool(read, lambda cur: list_deliveries(cur, status, limit))
        return JSONResponse({"rows": rows})

    async def test(request: Request) -> Response:
        name = request.path_params["rule"]
        rule = engine.config.rule(name)
        if rule is None:
            return JSONResponse({"ok": False, "error": f"no rule named {name!r}"}, status_code=404)
        if not rule.channels:
            return JSONResponse({"ok": False, "error": f"rule {name!r} has no channels"}, status_code=409)
        event = await run_in_threadpool(engine.test_event, rule)
        return JSONResponse({"ok": True, "channels": list(rule.channels), "event": event_payload(event)})

    async def silences(request: Request) -> Response:
        now = engine.clock()
        rows = await run_in_threadpool(
            read,
            lambda cur: cur.execute(
                "SELECT silence_id, rule, scope_key, reason, epoch_us(created_at), epoch_us(expires_at) "
                "FROM alert_silences "
                "WHERE expires_at > ? ORDER BY silence_id",
                [now],
            ).fetchall(),
        )
        keys = ("silence_id", "rule", "scope_key", "reason", "created_at", "expires_at")
        return JSONResponse(
            {
                "rows": [
                    {k: (_iso(ts(v)) if k.endswith("_at") else v) for k, v in zip(keys, r, strict=True)}
                    for r in rows
                ]
            }
        )

    async def add_silence(request: Request) -> Response:
        body = await request.body()
        if len(body) > 64 * 1024:
            raise ValueError("body too large")
        try:
            doc = json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError("body must be a JSON object")
        rule = doc.get("rule")
        if engine.config.rule(str(rule)) is None:
            raise ValueError(f"rule: no rule named {rule!r}")
        scope_key = doc.get("scope_key")
        if scope_key is not None and not isinstance(scope_key, str):
            raise ValueError("scope_key must be a string or null (every scope)")
        value = doc.get("duration", "1h")
        try:
            duration_s = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"duration: {exc}, got {value!r:.60}") from None
        reason = doc.get("reason")
        now = engine.clock()
        expires = now + timedelta(seconds=duration_s)

        def write(con: duckdb.DuckDBPyConnection) -> int:
            row = con.execute(
                "INSERT INTO alert_silences VALUES (nextval('alert_silence_seq'), ?, ?, ?, ?, ?) "
                "RETURNING silence_id",
                [rule, scope_key, str(reason) if reason is not None else None, now, expires],
            ).fetchone()
            assert row is not None
            return int(row[0])

        silence_id = await run_in_threadpool(store.run_write, write)
        return JSONResponse(
            {
                "silence_id": silence_id,
                "rule": rule,
                "scope_key": scope_key,
                "expires_at": expires.isoformat(),
            },
            status_code=201,
        )

    async def delete_silence(request: Request) -> Response:
        raw = request.path_params["silence_id"]
        if not str(raw).isdigit():
            raise ValueError("silence id must be an integer")

        def write(con: duckdb.DuckDBPyConnection) -> int:
            rows = con.execute(
                "DELETE FROM alert_silences WHERE silence_id = ? RETURNING silence_id", [int(raw)]
            )
            return len(rows.fetchall())

        n = await run_in_threadpool(store.run_write, write)
        if not n:
            return JSONResponse({"error": f"no silence {raw}"}, status_code=404)
        return JSONResponse({"ok": True})

    return [
        Route("/api/v1/alerts", guard(alerts), methods=["GET"]),
        Route("/api/v1/alerts/status", guard(status), methods=["GET"]),
        Route("/api/v1/alerts/deliveries", guard(deliveries), methods=["GET"]),
        Route("/api/v1/alerts/silences", guard(silences), methods=["GET"]),
        Route("/api/v1/alerts/silences", guard(add_silence), methods=["POST"]),
        Route("/api/v1/alerts/silences/{silence_id}", guard(delete_silence), methods=["DELETE"]),
        Route("/api/v1/alerts/{rule}/test", guard(test), methods=["POST"]),
    ]
