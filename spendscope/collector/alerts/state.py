"""The alert state machine (pure) and its persistence in DuckDB.

ok → pending (only with ``for``) → firing → resolved; a resolved instance that becomes active again
opens a new incident. Notifications are edges, not levels: one when firing starts, one each time the
incident escalates (budget 50 % → 80 %) or the re-notification interval has passed, one at resolution.
While silenced nothing is sent; a resolution is sent only for an incident that was announced.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from spendscope.collector.alerts.config import RuleConfig
from spendscope.collector.alerts.rules import Condition, Scope, scope_key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVENT_NAMESPACE = uuid.UUID("6f1c9a4e-5a56-4c0e-9d8e-2f8a3b7c1d20")

__all__ = [
    "AlertState",
    "Event",
    "Silence",
    "active_silences",
    "event_id",
    "event_payload",
    "is_silenced",
    "load_states",
    "next_id",
    "persist",
    "step",
    "ts",
]


@dataclass(frozen=True, slots=True)
class AlertState:
    rule: str
    scope_key: str
    scope: Scope
    kind: str
    state: str = "ok"
    severity: str = "warning"
    value: float | None = None
    threshold: float | None = None
    level: float = 0.0
    message: str = ""
    pending_since: datetime | None = None
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    last_evaluated_at: datetime | None = None
    incident: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """Something to tell people: firing, escalated, renotify, resolved or test."""

    kind: str
    state: AlertState
    at: datetime


@dataclass(frozen=True, slots=True)
class Silence:
    silence_id: int
    rule: str
    scope_key: str | None
    reason: str | None
    created_at: datetime
    expires_at: datetime


def is_silenced(silences: Iterable[Silence], rule: str, key: str, now: datetime) -> bool:
    return any(s.rule == rule and s.scope_key in (None, key) and s.expires_at > now for s in silences)


def _fire(st: AlertState, cond: Condition, now: datetime, silenced: bool) -> tuple[AlertState, Event | None]:
    st = replace(
        st,
        state="firing",
        started_at=now,
        resolved_at=None,
        pending_since=None,
        incident=st.incident + 1,
        level=cond.level,
        last_notified_at=None,
    )
    if silenced:
        return st, None
    st = replace(st, last_notified_at=now)
    return st, Event("firing", st, now)


def step(
    prev: AlertState | None,
    cond: Condition | None,
    rule: RuleConfig,
    now: datetime,
    *,
    silenced: bool = False,
) -> tuple[AlertState, Event | None]:
    """One evaluation of one instance. ``cond`` None means no data, read as not active."""
    if prev is None:
        assert cond is not None, "an instance is born from a condition"
        prev = AlertState(rule.name, scope_key(cond.scope), cond.scope, rule.kind, severity=rule.severity)
    st = replace(prev, last_evaluated_at=now, severity=rule.severity, kind=rule.kind)
    if cond is not None:
        st = replace(st, value=cond.value, threshold=cond.threshold, message=cond.message or st.message)
    active = cond is not None and cond.active

    if not active:
        if st.state == "pending":
            return replace(st, state="ok", pending_since=None), None
        if st.state == "firing":
            announced = st.last_notified_at is not None
            st = replace(st, state="resolved", resolved_at=now, message=_resolved_message(st, cond))
            if announced:
                st = replace(st, last_notified_at=now)
                return st, Event("resolved", st, now)
            return st, None
        return st, None

    assert cond is not None
    if st.state in ("ok", "resolved"):
        if rule.for_s > 0:
            return replace(st, state="pending", pending_since=now), None
        return _fire(st, cond, now, silenced)
    if st.state == "pending":
        since = st.pending_since or now
        if (now - since).total_seconds() >= rule.for_s:
            return _fire(st, cond, now, silenced)
        return st, None
    # firing
    escalated = cond.level > st.level
    st = replace(st, level=max(st.level, cond.level))
    if silenced:
        return st, None
    if st.last_notified_at is None:
        # Fired while silenced; the silence has ended: announce it now.
        st = replace(st, last_notified_at=now)
        return st, Event("firing", st, now)
    if escalated:
        st = replace(st, last_notified_at=now)
        return st, Event("escalated", st, now)
    last = st.last_notified_at
    assert last is not None
    if (now - last).total_seconds() >= rule.renotify_s:
        st = replace(st, last_notified_at=now)
        return st, Event("renotify", st, now)
    return st, None


def _resolved_message(st: AlertState, cond: Condition | None) -> str:
    if cond is not None and cond.message:
        return f"resolved: {cond.message}"
    return f"resolved: {st.rule}{' [' + st.scope_key + ']' if st.scope_key else ''} no longer matches"


# ---- persistence -------------------------------------------------------------------------------

# The alert_state table has a column per AlertState field, of the same name.
_FIELDS = tuple(f.name for f in fields(AlertState))
_TIME_FIELDS = frozenset(f.name for f in fields(AlertState) if f.type == "datetime | None")
# DuckDB hands TIMESTAMPTZ to Python through pytz, which we don't depend on: read epoch microseconds.
_STATE_SELECT = ", ".join(f"epoch_us({c})" if c in _TIME_FIELDS else c for c in _FIELDS)
# Delete and insert, ids as max + 1 and no RETURNING: the same SQL serves the local file and the lake
# (whose tables have no keys, sequences or RETURNING); either store has one writer of these tables.
_STATE_DELETE = "DELETE FROM alert_state WHERE rule = ? AND scope_key = ?"
_STATE_INSERT = f"INSERT INTO alert_state ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"


def ts(us: int | None) -> datetime | None:
    """A UTC datetime from epoch microseconds (``epoch_us(col)`` in SQL)."""
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _row_to_state(row: Sequence[Any]) -> AlertState:
    d = dict(zip(_FIELDS, row, strict=True))
    scope = d["scope"]
    d["scope"] = tuple(sorted((json.loads(scope) if isinstance(scope, str) else dict(scope or {})).items()))
    d["message"] = d["message"] or ""
    for name in _TIME_FIELDS:
        d[name] = ts(d[name])
    return AlertState(**d)


def _state_values(st: AlertState) -> list[Any]:
    return [json.dumps(dict(st.scope)) if name == "scope" else getattr(st, name) for name in _FIELDS]


def load_states(cur: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], AlertState]:
    rows = cur.execute(f"SELECT {_STATE_SELECT} FROM alert_state").fetchall()
    return {(r[0], r[1]): _row_to_state(r) for r in rows}


def active_silences(cur: duckdb.DuckDBPyConnection, now: datetime) -> list[Silence]:
    rows = cur.execute(
        "SELECT silence_id, rule, scope_key, reason, epoch_us(created_at), epoch_us(expires_at) "
        "FROM alert_silences WHERE expires_at > ? ORDER BY silence_id",
        [now],
    ).fetchall()
    return [Silence(r[0], r[1], r[2], r[3], ts(r[4]) or now, ts(r[5]) or now) for r in rows]


def event_payload(ev: Event) -> dict[str, Any]:
    """The event as every channel renders it; stored with each delivery so a restart can resend it."""
    st = ev.state

    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "event": ev.kind,
        "rule": st.rule,
        "kind": st.kind,
        "scope": dict(st.scope),
        "scope_key": st.scope_key,
        "state": st.state,
        "severity": st.severity,
        "value": st.value,
        "threshold": st.threshold,
        "message": st.message,
        "started_at": iso(st.started_at),
        "resolved_at": iso(st.resolved_at),
        "at": iso(ev.at),
        "incident": st.incident,
        "dedup_key": f"spendscope/{st.rule}/{st.scope_key or '-'}/{st.incident}",
        "event_id": event_id(ev),
    }


def event_id(ev: Event) -> str:
    """A stable id of the event: the same for every attempt, every channel and every replica that
    sends it (it is stored with the delivery), so a receiver can drop the repeat that a crash in the
    middle of a send may cause."""
    st = ev.state
    name = f"{st.rule}\x1f{st.scope_key}\x1f{st.incident}\x1f{ev.kind}\x1f{ev.at.isoformat()}"
    return str(uuid.uuid5(_EVENT_NAMESPACE, name))


def persist(
    con: duckdb.DuckDBPyConnection,
    states: Iterable[AlertState],
    events: Iterable[Event],
    channels_for: Mapping[str, Sequence[str]],
) -> list[int]:
    """Write changed states, their events and the deliveries (outbox) in one transaction.

    Returns the new delivery ids. Either everything of a tick is stored or nothing: a crash between
    deciding to notify and recording it can neither lose the notification nor send it twice.
    """
    delivery_ids: list[int] = []
    con.execute("BEGIN TRANSACTION")
    try:
        for st in states:
            con.execute(_STATE_DELETE, [st.rule, st.scope_key])
            con.execute(_STATE_INSERT, _state_values(st))
        for ev in events:
            delivery_ids.extend(_record_event(con, ev, channels_for.get(ev.state.rule, ())))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return delivery_ids


def next_id(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    """The next id of ``table`` (max + 1), read in the writer's transaction."""
    row = con.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}").fetchone()
    return int(row[0]) if row else 1


def _record_event(con: duckdb.DuckDBPyConnection, ev: Event, channels: Sequence[str]) -> list[int]:
    st = ev.state
    event_id = next_id(con, "alert_events", "event_id")
    con.execute(
        "INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            event_id,
            st.rule,
            st.scope_key,
            st.incident,
            ev.kind,
            ev.at,
            st.severity,
            st.value,
            st.threshold,
            st.message,
        ],
    )
    payload = json.dumps(event_payload(ev))
    ids: list[int] = []
    delivery_id = next_id(con, "alert_deliveries", "delivery_id")
    for ch in channels:
        con.execute(
            "INSERT INTO alert_deliveries (delivery_id, event_id, rule, scope_key, channel, status, "
            "attempts, next_attempt_at, payload, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
            [delivery_id, event_id, st.rule, st.scope_key, ch, ev.at, payload, ev.at],
        )
        ids.append(delivery_id)
        delivery_id += 1
    return ids
