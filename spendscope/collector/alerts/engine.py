"""One evaluation tick: query → evaluate → transition → persist state and outbox → wake the sender."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import duckdb

from spendscope.collector.alerts.config import AlertsConfig, RuleConfig
from spendscope.collector.alerts.delivery import AlertStore, DeliveryWorker
from spendscope.collector.alerts.metrics import samples
from spendscope.collector.alerts.rules import Condition, evaluate, scope_key
from spendscope.collector.alerts.state import (
    AlertState,
    Event,
    Silence,
    active_silences,
    is_silenced,
    load_states,
    persist,
    step,
)

__all__ = ["AlertEngine", "TickResult"]

log = logging.getLogger("spendscope.collector.alerts.engine")


@dataclass
class TickResult:
    at: datetime
    events: list[Event] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # rule -> why it could not be evaluated


class AlertEngine:
    def __init__(
        self,
        config: AlertsConfig,
        store: AlertStore,
        clock: Callable[[], datetime],
        worker: DeliveryWorker | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.worker = worker
        self.last_tick: TickResult | None = None

    def _channels_for(self) -> dict[str, tuple[str, ...]]:
        return {r.name: r.channels for r in self.config.rules}

    def tick(self) -> TickResult:
        """Evaluate every rule once at ``clock()``. A rule whose query fails keeps its state as is."""
        now = self.clock()
        result = TickResult(now)
        cur = self.store.cursor()
        try:
            states = load_states(cur)
            silences = active_silences(cur, now)
            changed: list[AlertState] = []
            for rule in self.config.rules:
                if not rule.enabled:
                    continue
                try:
                    conditions = evaluate(rule, samples(cur, rule, now), now)
                except (duckdb.Error, ValueError, ArithmeticError) as exc:
                    # Never resolve on a failed query: "can't tell" is not "fine".
                    log.warning("alert rule %s could not be evaluated: %s", rule.name, exc)
                    result.errors[rule.name] = str(exc)
                    continue
                new_states, events = self._step_rule(rule, conditions, states, now, silences)
                changed.extend(new_states)
                result.events.extend(events)
            changed.extend(self._orphans(states, now))
        finally:
            cur.close()
        if changed or result.events:
            channels = self._channels_for()
            self.store.run_write(lambda con: persist(con, changed, result.events, channels))
        if result.events and self.worker is not None:
            self.worker.wake()
        self.last_tick = result
        return result

    def _orphans(self, states: dict[tuple[str, str], AlertState], now: datetime) -> list[AlertState]:
        """Open instances of rules removed or disabled in the config: close them quietly.

        Their channels may be gone too, and nobody asked to hear about this rule any more; without
        this they would show as firing forever.
        """
        live = {r.name for r in self.config.rules if r.enabled}
        return [
            replace(
                st,
                state="resolved",
                resolved_at=now,
                last_evaluated_at=now,
                message=f"resolved: rule {st.rule} is no longer configured",
            )
            for (rule, _), st in states.items()
            if rule not in live and st.state in ("pending", "firing")
        ]

    def _step_rule(
        self,
        rule: RuleConfig,
        conditions: list[Condition],
        states: dict[tuple[str, str], AlertState],
        now: datetime,
        silences: list[Silence],
    ) -> tuple[list[AlertState], list[Event]]:
        by_key = {scope_key(c.scope): c for c in conditions}
        keys = set(by_key)
        # Open instances without a condition this tick (no traffic, no data) are stepped too, so
        # they can resolve; settled ok/resolved ones without data are left alone.
        keys |= {k for (r, k), st in states.items() if r == rule.name and st.state in ("pending", "firing")}
        out_states: list[AlertState] = []
        out_events: list[Event] = []
        for key in sorted(keys):
            prev = states.get((rule.name, key))
            cond = by_key.get(key)
            if prev is None and (cond is None or not cond.active):
                continue  # nothing to remember about an instance that never fired
            silenced = is_silenced(silences, rule.name, key, now)
            new, event = step(prev, cond, rule, now, silenced=silenced)
            out_states.append(new)
            if event is not None:
                out_events.append(event)
        return out_states, out_events

    def test_event(self, rule: RuleConfig) -> Event:
        """A ``test`` event for ``rule``, recorded and queued to its channels like a real one."""
        now = self.clock()
        st = AlertState(
            rule.name,
            "",
            (),
            rule.kind,
            state="test",
            severity=rule.severity,
            message=f"test notification for rule {rule.name} ({rule.kind}); nothing is wrong",
        )
        event = Event("test", replace(st, started_at=now), now)
        channels = self._channels_for()
        self.store.run_write(lambda con: persist(con, [], [event], channels))
        if self.worker is not None:
            self.worker.wake()
        return event
