"""Pure rule evaluation: the numbers a rule looks at go in, one condition per alert instance comes out.

No I/O here: :mod:`metrics` reads DuckDB into the sample types below, and each ``evaluate_<kind>``
decides whether its condition holds. An instance with no sample (no traffic, no data) yields no
condition, which the state machine reads as "not active".
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from spendscope.collector.alerts.config import RuleConfig

__all__ = [
    "BudgetSample",
    "CaptureSample",
    "Condition",
    "CountSample",
    "DriftItem",
    "DriftSample",
    "HeadroomSample",
    "LatencySample",
    "Sample",
    "Scope",
    "SpikeSample",
    "SyncSample",
    "evaluate",
    "period_bounds",
    "scope_key",
]

Scope = tuple[tuple[str, str], ...]  # (dimension, value) pairs, sorted


def scope_key(scope: Scope) -> str:
    """The instance's identity within its rule: ``""`` for a global rule, else ``model=x,project=y``."""
    return ",".join(f"{k}={v}" for k, v in scope)


def _label(scope: Scope) -> str:
    return f" [{scope_key(scope)}]" if scope else ""


def _money(d: Decimal) -> str:
    return f"${d.quantize(Decimal('0.01'))}"


@dataclass(frozen=True, slots=True)
class Condition:
    scope: Scope
    active: bool
    value: float | None
    threshold: float | None
    level: float  # rises when the same incident gets worse (budget 50 % -> 80 %): notify again at once
    message: str


@dataclass(frozen=True, slots=True)
class BudgetSample:
    scope: Scope
    spend: Decimal  # spend since the period started


@dataclass(frozen=True, slots=True)
class SpikeSample:
    scope: Scope
    current: Decimal  # spend in the last window
    baseline: Decimal  # mean spend of the same-length windows over the trailing baseline


@dataclass(frozen=True, slots=True)
class CountSample:
    scope: Scope
    calls: int
    hits: int  # errors, 429s, insufficient_quota calls or unpriced calls
    detail: str = ""  # e.g. the unpriced model names


@dataclass(frozen=True, slots=True)
class HeadroomSample:
    scope: Scope
    limit_tokens: int | None
    remaining_tokens: int | None
    limit_requests: int | None
    remaining_requests: int | None


@dataclass(frozen=True, slots=True)
class LatencySample:
    scope: Scope
    calls: int
    seconds: float | None  # the percentile


@dataclass(frozen=True, slots=True)
class CaptureSample:
    scope: Scope
    tracked: Decimal
    billed: Decimal


@dataclass(frozen=True, slots=True)
class SyncSample:
    available: bool  # False when the sync tables do not exist (sync not installed)
    last_status: str | None
    last_error: str | None
    last_ok_at: datetime | None
    ever_ran: bool


@dataclass(frozen=True, slots=True)
class DriftItem:
    """A billed model's unit price of one kind against the price table's, on its latest drifting day."""

    model: str
    tier: str
    kind: str
    unit: str
    day: str  # ISO date
    bill: Decimal
    table: Decimal
    drift_pct: Decimal | None  # None: the table says 0 and the bill does not


@dataclass(frozen=True, slots=True)
class DriftSample:
    scope: Scope
    items: tuple[DriftItem, ...]  # the drifts above the rule's threshold, largest first


Sample = (
    BudgetSample
    | SpikeSample
    | CountSample
    | HeadroomSample
    | LatencySample
    | CaptureSample
    | SyncSample
    | DriftSample
)


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the UTC day, ISO week (Monday) or calendar month holding ``now``."""
    now = now.astimezone(UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=now.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    days = calendar.monthrange(now.year, now.month)[1]
    return start, start + timedelta(days=days)


def evaluate_budget(rule: RuleConfig, samples: Sequence[BudgetSample], now: datetime) -> list[Condition]:
    p = rule.params
    amount: Decimal = p["amount_usd"]
    start, end = period_bounds(p["period"], now)
    total_s = (end - start).total_seconds()
    elapsed_s = (now - start).total_seconds()
    out: list[Condition] = []
    for s in samples:
        pct = float(s.spend / amount * 100)
        crossed = [t for t in p["thresholds"] if pct >= t]
        if crossed:
            top = max(crossed)
            out.append(
                Condition(
                    s.scope,
                    True,
                    pct,
                    top,
                    top,
                    f"{rule.name}{_label(s.scope)}: {_money(s.spend)} spent this {p['period']}, "
                    f"{pct:.1f}% of the {_money(amount)} budget (threshold {top:g}%)",
                )
            )
            continue
        # A linear burn-rate projection to the end of *this* period (the reset is the period bound,
        # not a rolling window). Too early in the period one expensive call would project absurdly,
        # so wait for 1/24 of it to pass.
        if p["projected"] and elapsed_s >= total_s / 24 and s.spend > 0:
            projected = s.spend / Decimal(elapsed_s) * Decimal(total_s)
            if projected > amount:
                rate = s.spend / Decimal(elapsed_s)
                exceed_at = start + timedelta(seconds=float(amount / rate))
                out.append(
                    Condition(
                        s.scope,
                        True,
                        float(projected / amount * 100),
                        100.0,
                        0.0,
                        f"{rule.name}{_label(s.scope)}: projected {_money(projected)} "
                        f"by {end:%Y-%m-%d %H:%M} UTC, over the {_money(amount)} {p['period']} budget "
                        f"around {exceed_at:%Y-%m-%d %H:%M} UTC "
                        f"({_money(s.spend)} spent so far)",
                    )
                )
                continue
        out.append(Condition(s.scope, False, pct, p["thresholds"][0], 0.0, ""))
    return out


def evaluate_spend_spike(rule: RuleConfig, samples: Sequence[SpikeSample]) -> list[Condition]:
    p = rule.params
    out: list[Condition] = []
    for s in samples:
        limit = s.baseline * Decimal(str(p["multiplier"]))
        active = s.current >= p["min_usd"] and s.current > limit
        ratio = float(s.current / s.baseline) if s.baseline > 0 else None
        out.append(
            Condition(
                s.scope,
                active,
                float(s.current),
                float(limit),
                1.0,
                f"{rule.name}{_label(s.scope)}: {_money(s.current)} in the last window, "
                + (
                    f"{ratio:.1f}x the trailing baseline of {_money(s.baseline)}"
                    if ratio is not None
                    else "with no spend in the trailing baseline"
                ),
            )
        )
    return out


def evaluate_rate(rule: RuleConfig, samples: Sequence[CountSample], what: str) -> list[Condition]:
    p = rule.params
    out: list[Condition] = []
    for s in samples:
        if s.calls < p["min_calls"]:
            continue  # too few calls to mean anything: no data
        pct = 100.0 * s.hits / s.calls
        out.append(
            Condition(
                s.scope,
                pct > p["threshold_pct"],
                pct,
                p["threshold_pct"],
                1.0,
                f"{rule.name}{_label(s.scope)}: {what} {pct:.1f}% ({s.hits} of {s.calls} calls), "
                f"threshold {p['threshold_pct']:g}%",
            )
        )
    return out


def evaluate_seen(rule: RuleConfig, samples: Sequence[CountSample], what: str) -> list[Condition]:
    return [
        Condition(
            s.scope,
            s.hits > 0,
            float(s.hits),
            0.0,
            1.0,
            f"{rule.name}{_label(s.scope)}: {s.hits} {what}{(': ' + s.detail) if s.detail else ''}",
        )
        for s in samples
    ]


def evaluate_headroom(rule: RuleConfig, samples: Sequence[HeadroomSample]) -> list[Condition]:
    p = rule.params
    out: list[Condition] = []
    for s in samples:
        shares: list[tuple[str, float]] = []
        if p["on"] in ("tokens", "either") and s.limit_tokens and s.remaining_tokens is not None:
            shares.append(("tokens", 100.0 * s.remaining_tokens / s.limit_tokens))
        if p["on"] in ("requests", "either") and s.limit_requests and s.remaining_requests is not None:
            shares.append(("requests", 100.0 * s.remaining_requests / s.limit_requests))
        if not shares:
            continue
        which, pct = min(shares, key=lambda x: x[1])
        out.append(
            Condition(
                s.scope,
                pct < p["min_headroom_pct"],
                pct,
                p["min_headroom_pct"],
                1.0,
                f"{rule.name}{_label(s.scope)}: {pct:.1f}% of the {which} rate limit left "
                f"(minimum {p['min_headroom_pct']:g}%)",
            )
        )
    return out


def evaluate_latency(rule: RuleConfig, samples: Sequence[LatencySample]) -> list[Condition]:
    p = rule.params
    name = "time to first chunk" if p["metric"] == "ttfc" else "latency"
    out: list[Condition] = []
    for s in samples:
        if s.calls < p["min_calls"] or s.seconds is None:
            continue
        out.append(
            Condition(
                s.scope,
                s.seconds > p["threshold_s"],
                s.seconds,
                p["threshold_s"],
                1.0,
                f"{rule.name}{_label(s.scope)}: p{p['percentile']:g} {name} {s.seconds:.2f}s "
                f"over {s.calls} calls (threshold {p['threshold_s']:g}s)",
            )
        )
    return out


def evaluate_capture(rule: RuleConfig, samples: Sequence[CaptureSample]) -> list[Condition]:
    p = rule.params
    out: list[Condition] = []
    for s in samples:
        if s.billed < p["min_billed_usd"] or s.billed <= 0:
            continue  # nothing billed to explain: no data
        rate = float(s.tracked / s.billed)
        low, high = p["min_rate"], p["max_rate"]
        why = "billed spend not explained by traces" if rate < low else "tracked above billed (over-pricing?)"
        out.append(
            Condition(
                s.scope,
                not low <= rate <= high,
                rate,
                low if rate < low else high,
                1.0,
                f"{rule.name}{_label(s.scope)}: capture rate {rate:.2f} (tracked {_money(s.tracked)}, "
                f"billed {_money(s.billed)}), band {low:g}-{high:g}: {why}",
            )
        )
    return out


def evaluate_sync(rule: RuleConfig, samples: Sequence[SyncSample], now: datetime) -> list[Condition]:
    out: list[Condition] = []
    max_age = rule.params["max_age_s"]
    for s in samples:
        if not s.available or not s.ever_ran:
            continue  # the sync is not set up: no data, not an alert
        age = (now - s.last_ok_at).total_seconds() if s.last_ok_at else None
        if s.last_status == "error":
            msg = f"{rule.name}: the last Usage/Costs sync failed: {s.last_error or 'unknown error'}"
            out.append(Condition((), True, age, float(max_age), 1.0, msg))
        elif age is None or age > max_age:
            when = f"{age / 3600:.1f}h ago" if age is not None else "never"
            msg = (
                f"{rule.name}: Usage/Costs data is stale: last successful sync {when} "
                f"(max {max_age / 3600:g}h)"
            )
            out.append(Condition((), True, age, float(max_age), 1.0, msg))
        else:
            out.append(Condition((), False, age, float(max_age), 1.0, ""))
    return out


def _drift_text(i: DriftItem) -> str:
    pct = "the table says 0" if i.drift_pct is None else f"{i.drift_pct:+.1f}%"
    tier = "" if i.tier == "default" else f" {i.tier}"
    return (
        f"{i.model}{tier} {i.kind.replace('_', ' ')} billed {i.bill.normalize():f} {i.unit} on {i.day}, "
        f"the price table says {i.table.normalize():f} ({pct})"
    )


def evaluate_price_drift(rule: RuleConfig, samples: Sequence[DriftSample]) -> list[Condition]:
    threshold = rule.params["threshold_pct"]
    out: list[Condition] = []
    for s in samples:
        # The largest drift in percent; None when only a zero table price was billed above zero.
        worst = max((abs(i.drift_pct) for i in s.items if i.drift_pct is not None), default=None)
        shown = "; ".join(_drift_text(i) for i in s.items[:5])
        more = f"; and {len(s.items) - 5} more" if len(s.items) > 5 else ""
        message = (
            f"{rule.name}{_label(s.scope)}: the bill's unit price differs from the price table's by "
            f"more than {threshold:g}%: {shown}{more}"
        )
        value = float(worst) if worst is not None else None
        out.append(Condition(s.scope, bool(s.items), value, threshold, 1.0, message if s.items else ""))
    return out


def evaluate(rule: RuleConfig, samples: Sequence[Any], now: datetime) -> list[Condition]:
    """Dispatch to the rule kind's evaluator."""
    kind = rule.kind
    if kind == "budget":
        return evaluate_budget(rule, samples, now)
    if kind == "spend_spike":
        return evaluate_spend_spike(rule, samples)
    if kind == "error_rate":
        return evaluate_rate(rule, samples, "error rate")
    if kind == "rate_429":
        return evaluate_rate(rule, samples, "429 rate")
    if kind == "insufficient_quota":
        return evaluate_seen(
            rule, samples, "call(s) refused with insufficient_quota: the account is out of credit"
        )
    if kind == "unpriced_models":
        return evaluate_seen(rule, samples, "call(s) to models with no price")
    if kind == "ratelimit_headroom":
        return evaluate_headroom(rule, samples)
    if kind == "latency":
        return evaluate_latency(rule, samples)
    if kind == "capture_rate":
        return evaluate_capture(rule, samples)
    if kind == "sync_failure":
        return evaluate_sync(rule, samples, now)
    if kind == "price_drift":
        return evaluate_price_drift(rule, samples)
    raise ValueError(f"unknown rule kind {kind!r}")
