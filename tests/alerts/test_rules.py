"""Each rule kind fires, re-notifies and resolves exactly when it should (injected clock, real DuckDB)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spendscope.collector.alerts.rules import period_bounds
from spendscope.collector.rollups import roll_dirty_days
from spendscope.collector.store import Store

from .helpers import T0, Clock, add_call, engine_for, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "rules.duckdb")
    yield s
    s.close()


def kinds(result: object) -> list[tuple[str, str]]:
    return [(e.kind, e.state.scope_key) for e in result.events]  # type: ignore[attr-defined]


def test_period_bounds_reset_on_calendar_edges() -> None:
    t = datetime(2026, 2, 28, 23, 59, tzinfo=UTC)
    assert period_bounds("day", t) == (datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert period_bounds("week", t) == (datetime(2026, 2, 23, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    assert period_bounds("month", t) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


BUDGET = """
[[alerts.rules]]
name = "daily"
kind = "budget"
period = "day"
amount_usd = "10"
thresholds = [50, 80, 100]
projected = false
renotify = "1h"
"""


def test_budget_thresholds_escalate_renotify_and_reset_at_period_end(store: Store) -> None:
    clock = Clock(T0.replace(hour=1))
    eng = engine_for(store, clock, BUDGET)
    assert kinds(eng.tick()) == []
    add_call(store, clock() - timedelta(minutes=5), cost_usd="4.99")
    assert kinds(eng.tick()) == []  # 49.9 %: below the first threshold
    add_call(store, clock() - timedelta(minutes=4), cost_usd="0.01")
    r = eng.tick()
    assert kinds(r) == [("firing", "")]
    assert r.events[0].state.threshold == 50.0 and "50.0%" in r.events[0].state.message
    clock.advance(minutes=59)
    assert kinds(eng.tick()) == []  # within the re-notify interval
    add_call(store, clock() - timedelta(minutes=1), cost_usd="3")
    r = eng.tick()
    assert kinds(r) == [("escalated", "")]  # 80 % crossed: tell at once, not after the interval
    clock.advance(minutes=59, seconds=59)
    assert kinds(eng.tick()) == []
    clock.advance(seconds=1)
    assert kinds(eng.tick()) == [("renotify", "")]  # exactly one interval after the last notice
    # Midnight UTC: the budget period resets, spend is 0 again, the incident resolves once.
    clock.set(T0.replace(hour=0) + timedelta(days=1))
    assert kinds(eng.tick()) == [("resolved", "")]
    clock.advance(minutes=1)
    assert kinds(eng.tick()) == []


def test_budget_projection_uses_the_period_not_a_rolling_window(store: Store) -> None:
    text = BUDGET.replace("projected = false", "projected = true")
    clock = Clock(datetime(2026, 3, 10, 0, 30, tzinfo=UTC))
    eng = engine_for(store, clock, text)
    add_call(store, clock() - timedelta(minutes=10), cost_usd="3")
    # 30 minutes into the day is under 1/24 of it: too early to extrapolate one call.
    assert kinds(eng.tick()) == []
    clock.set(datetime(2026, 3, 10, 6, 0, tzinfo=UTC))
    r = eng.tick()  # $3 in 6 h projects to $12 by midnight: over the $10 budget
    assert kinds(r) == [("firing", "")]
    msg = r.events[0].state.message
    assert "projected $12.00 by 2026-03-11 00:00 UTC" in msg and "around 2026-03-10 20:00 UTC" in msg
    # The reset: the next day starts from zero, so yesterday's burn no longer projects an overrun.
    clock.set(datetime(2026, 3, 11, 6, 0, tzinfo=UTC))
    assert kinds(eng.tick()) == [("resolved", "")]


def test_budget_scope_and_group_by(store: Store) -> None:
    text = BUDGET + 'scope = {service = "api"}\ngroup_by = ["project"]\n'
    clock = Clock(T0)
    eng = engine_for(store, clock, text)
    add_call(store, T0 - timedelta(hours=1), cost_usd="6", project="a", service="api")
    add_call(store, T0 - timedelta(hours=1), cost_usd="2", project="b", service="api")
    add_call(store, T0 - timedelta(hours=1), cost_usd="9", project="b", service="batch")  # out of scope
    assert kinds(eng.tick()) == [("firing", "project=a,service=api")]


def test_a_monthly_budget_counts_days_kept_only_in_the_rollups(store: Store) -> None:
    # Calls retention shorter than the budget period: old days live on in the daily rollups, and
    # the budget reads them there like the spend API does (before, it scanned calls only).
    text = BUDGET.replace('period = "day"', 'period = "month"')
    clock = Clock(datetime(2026, 3, 20, 12, tzinfo=UTC))
    eng = engine_for(store, clock, text)
    add_call(store, datetime(2026, 3, 2, 9, tzinfo=UTC), cost_usd="6")
    add_call(store, datetime(2026, 3, 20, 11, tzinfo=UTC), cost_usd="1")

    def roll_and_expire(con: Any) -> None:
        roll_dirty_days(con, clock())
        con.execute("DELETE FROM calls WHERE day < DATE '2026-03-10'")

    store.run_write(roll_and_expire)
    r = eng.tick()
    assert kinds(r) == [("firing", "")] and r.events[0].state.value == 70.0  # $7 of $10, not $1


SPIKE = """
[[alerts.rules]]
name = "spike"
kind = "spend_spike"
window = "1h"
baseline_days = 2
multiplier = 3
min_usd = "5"
"""


def test_spend_spike_against_trailing_baseline_with_minimum(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, SPIKE)
    for h in range(1, 48):
        add_call(store, T0 - timedelta(hours=h, minutes=30), cost_usd="1")  # $1/h baseline
    add_call(store, T0 - timedelta(minutes=30), cost_usd="2.5")
    assert kinds(eng.tick()) == []  # 2.5x and under the minimum
    add_call(store, T0 - timedelta(minutes=20), cost_usd="2")
    r = eng.tick()  # $4.50: above 3x baseline but under $5 minimum
    assert kinds(r) == []
    add_call(store, T0 - timedelta(minutes=10), cost_usd="1")
    r = eng.tick()
    assert kinds(r) == [("firing", "")]
    assert "5.5x the trailing baseline" in r.events[0].state.message
    clock.advance(hours=1)  # the expensive hour leaves the window
    assert kinds(eng.tick()) == [("resolved", "")]


def rate_rule(kind: str, extra: str = "") -> str:
    return f"""
[[alerts.rules]]
name = "r"
kind = "{kind}"
window = "10m"
threshold_pct = 10
min_calls = 10
renotify = "30m"
{extra}
"""


def test_error_rate_min_calls_fire_renotify_resolve(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, rate_rule("error_rate"))
    for i in range(5):
        add_call(store, T0 - timedelta(minutes=1, seconds=i), is_error=True, status_code=500)
    assert kinds(eng.tick()) == []  # 5 calls < min_calls: no data, no alert
    for i in range(5):
        add_call(store, T0 - timedelta(minutes=2, seconds=i))
    r = eng.tick()
    assert kinds(r) == [("firing", "")] and r.events[0].state.value == 50.0
    clock.advance(minutes=5)
    assert kinds(eng.tick()) == []
    for i in range(20):
        add_call(store, clock() - timedelta(seconds=i + 1))
    clock.advance(minutes=3)  # errors still in the 10-minute window: 5 of 30 = 16.7 %
    assert kinds(eng.tick()) == []
    clock.advance(minutes=1, seconds=30)  # errors left the window: 0 of 20
    assert kinds(eng.tick()) == [("resolved", "")]


def test_error_rate_renotifies_on_the_interval(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, rate_rule("error_rate").replace('window = "10m"', 'window = "2h"'))
    for i in range(10):
        add_call(store, T0 - timedelta(seconds=i + 1), is_error=True)
    assert kinds(eng.tick()) == [("firing", "")]
    clock.advance(minutes=29, seconds=59)
    assert kinds(eng.tick()) == []
    clock.advance(seconds=1)
    assert kinds(eng.tick()) == [("renotify", "")]
    clock.advance(minutes=30)
    assert kinds(eng.tick()) == [("renotify", "")]


def test_pending_for_duration_before_firing(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(
        store, clock, rate_rule("rate_429", 'for = "3m"').replace('window = "10m"', 'window = "1h"')
    )
    for i in range(10):
        add_call(store, T0 - timedelta(seconds=i + 1), is_error=True, status_code=429)
    assert kinds(eng.tick()) == []
    clock.advance(minutes=2, seconds=59)
    assert kinds(eng.tick()) == []
    clock.advance(seconds=1)
    assert kinds(eng.tick()) == [("firing", "")]


def test_rate_429_counts_only_429(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, rate_rule("rate_429") + 'group_by = ["model"]\n')
    for i in range(10):
        add_call(store, T0 - timedelta(seconds=i + 1), is_error=True, status_code=500, model="a")
        add_call(
            store, T0 - timedelta(seconds=i + 1), is_error=i < 2, status_code=429 if i < 2 else 200, model="b"
        )
    assert kinds(eng.tick()) == [("firing", "model=b")]
    clock.advance(minutes=11)  # no calls in the window: the instance resolves
    assert kinds(eng.tick()) == [("resolved", "model=b")]


QUOTA = """
[[alerts.rules]]
name = "quota"
kind = "insufficient_quota"
window = "15m"
"""


def test_insufficient_quota_pages_on_first_sight(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, QUOTA)
    add_call(
        store, T0 - timedelta(minutes=1), is_error=True, status_code=429, error_type="rate_limit_exceeded"
    )
    assert kinds(eng.tick()) == []
    add_call(
        store, T0 - timedelta(seconds=5), is_error=True, status_code=429, error_type="insufficient_quota"
    )
    r = eng.tick()
    assert kinds(r) == [("firing", "")] and r.events[0].state.severity == "critical"
    clock.advance(minutes=15)
    assert kinds(eng.tick()) == [("resolved", "")]


HEADROOM = """
[[alerts.rules]]
name = "headroom"
kind = "ratelimit_headroom"
min_headroom_pct = 10
window = "15m"
group_by = ["model"]
"""


def test_ratelimit_headroom_latest_observation(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, HEADROOM)
    rl = {"ratelimit_limit_tokens": 1000, "ratelimit_limit_requests": 100, "ratelimit_remaining_requests": 90}
    add_call(store, T0 - timedelta(minutes=3), ratelimit_remaining_tokens=50, **rl)
    add_call(store, T0 - timedelta(minutes=2), ratelimit_remaining_tokens=500, **rl)
    assert kinds(eng.tick()) == []  # the latest reading (50 %) is what counts
    add_call(store, T0 - timedelta(minutes=1), ratelimit_remaining_tokens=90, **rl)
    r = eng.tick()
    assert kinds(r) == [("firing", "model=gpt-4o")] and "9.0% of the tokens" in r.events[0].state.message
    clock.advance(minutes=1)
    add_call(store, clock() - timedelta(seconds=1), ratelimit_remaining_tokens=900, **rl)
    assert kinds(eng.tick()) == [("resolved", "model=gpt-4o")]


LATENCY = """
[[alerts.rules]]
name = "ttfc"
kind = "latency"
metric = "ttfc"
percentile = 90
threshold_s = 2
min_calls = 10
window = "5m"
"""


def test_latency_percentile_ttfc(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, LATENCY)
    for i in range(10):
        add_call(store, T0 - timedelta(seconds=i + 1), ttfc_s=0.5, duration_s=9.0)
    assert kinds(eng.tick()) == []  # duration is slow, time to first chunk is not
    for i in range(5):
        add_call(store, T0 - timedelta(seconds=i + 1), ttfc_s=5.0)
    r = eng.tick()
    assert kinds(r) == [("firing", "")] and "p90 time to first chunk 5.00s" in r.events[0].state.message
    clock.advance(minutes=5)
    assert kinds(eng.tick()) == [("resolved", "")]


UNPRICED = """
[[alerts.rules]]
name = "unpriced"
kind = "unpriced_models"
window = "1h"
"""


def test_unpriced_models_names_the_models(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, UNPRICED)
    add_call(store, T0 - timedelta(minutes=1), cost_usd="1")
    assert kinds(eng.tick()) == []
    add_call(
        store, T0 - timedelta(minutes=1), model="gpt-9-preview", cost_usd=None, pricing_status="unpriced"
    )
    r = eng.tick()
    assert kinds(r) == [("firing", "")] and "gpt-9-preview" in r.events[0].state.message
    clock.advance(hours=1)
    assert kinds(eng.tick()) == [("resolved", "")]


CAPTURE = """
[[alerts.rules]]
name = "capture"
kind = "capture_rate"
days = 2
lag_days = 1
min_rate = 0.9
max_rate = 1.1
group_by = ["project"]
"""


def add_cost(store: Store, day: datetime, project: str, amount: str) -> None:
    s = int(day.timestamp())
    store.run_write(
        lambda con: con.execute(
            "INSERT INTO cost_buckets (bucket_start, bucket_end, bucket_start_s, bucket_end_s, day, "
            "group_key, project_id, amount, currency, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'usd', '{}')",
            [day, day + timedelta(days=1), s, s + 86400, day.date(), project, project, amount],
        )
    )


def test_capture_rate_out_of_band_both_ways(store: Store) -> None:
    clock = Clock(T0)  # 2026-03-10: compares 03-08 and 03-09
    eng = engine_for(store, clock, CAPTURE)
    d8, d9 = datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    add_call(store, d8 + timedelta(hours=1), cost_usd="50", project="p1")
    add_call(store, d9 + timedelta(hours=1), cost_usd="45", project="p1")
    add_call(store, d9 + timedelta(hours=1), cost_usd="30", project="p2")
    add_call(store, T0 - timedelta(hours=1), cost_usd="500", project="p1")  # today: billing lags, ignored
    add_cost(store, d8, "p1", "50")
    add_cost(store, d9, "p1", "50")  # p1: 95/100 = 0.95, in band
    add_cost(store, d9, "p2", "20")  # p2: 30/20 = 1.5, tracked above billed
    add_cost(store, d9, "p3", "40")  # p3: nothing traced, 0.0
    r = eng.tick()
    assert sorted(kinds(r)) == [("firing", "project=p2"), ("firing", "project=p3")]
    by = {e.state.scope_key: e.state.message for e in r.events}
    assert "tracked above billed" in by["project=p2"] and "not explained by traces" in by["project=p3"]


def test_capture_rate_without_billing_data_is_no_data(store: Store) -> None:
    eng = engine_for(store, Clock(T0), CAPTURE)
    add_call(store, datetime(2026, 3, 9, 1, tzinfo=UTC), cost_usd="50", project="p1")
    r = eng.tick()
    assert kinds(r) == [] and r.errors == {}


SYNC = """
[[alerts.rules]]
name = "sync"
kind = "sync_failure"
max_age = "2h"
"""


def add_run(store: Store, run_id: int, status: str, at: datetime, error: str | None = None) -> None:
    store.run_write(
        lambda con: con.execute(
            "INSERT INTO sync_runs (run_id, trigger, status, started_at, finished_at, error) "
            "VALUES (?, 'schedule', ?, ?, ?, ?)",
            [run_id, status, at, at + timedelta(seconds=5), error],
        )
    )


def test_sync_failure_and_staleness(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, SYNC)
    assert kinds(eng.tick()) == []  # never ran: the sync is not set up, no alert
    add_run(store, 1, "ok", T0 - timedelta(minutes=30))
    assert kinds(eng.tick()) == []
    add_run(store, 2, "error", T0 - timedelta(minutes=1), "admin key refused (401)")
    r = eng.tick()
    assert kinds(r) == [("firing", "")] and "admin key refused" in r.events[0].state.message
    add_run(store, 3, "ok", T0)
    clock.advance(minutes=1)
    assert kinds(eng.tick()) == [("resolved", "")]
    clock.advance(hours=2)  # no successful run for over 2 h: stale
    r = eng.tick()
    assert kinds(r) == [("firing", "")] and "stale" in r.events[0].state.message
    assert r.events[0].state.incident == 2


def test_silence_suppresses_then_announces_after_expiry(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, QUOTA)
    store.run_write(
        lambda con: con.execute(
            "INSERT INTO alert_silences VALUES (nextval('alert_silence_seq'), 'quota', NULL, 'known', ?, ?)",
            [T0, T0 + timedelta(minutes=10)],
        )
    )
    add_call(store, T0 - timedelta(seconds=5), is_error=True, error_type="insufficient_quota")
    assert kinds(eng.tick()) == []  # firing, but silenced
    clock.advance(minutes=5)
    add_call(store, clock() - timedelta(seconds=5), is_error=True, error_type="insufficient_quota")
    assert kinds(eng.tick()) == []
    clock.advance(minutes=5)
    assert kinds(eng.tick()) == [("firing", "")]  # the silence expired while still firing


def test_unannounced_incident_resolves_silently(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, QUOTA)
    store.run_write(
        lambda con: con.execute(
            "INSERT INTO alert_silences VALUES (nextval('alert_silence_seq'), 'quota', '', NULL, ?, ?)",
            [T0, T0 + timedelta(hours=1)],
        )
    )
    add_call(store, T0 - timedelta(seconds=5), is_error=True, error_type="insufficient_quota")
    assert kinds(eng.tick()) == []
    clock.advance(minutes=16)
    assert kinds(eng.tick()) == []  # nobody was told it fired, so nobody is told it resolved


def test_failed_query_keeps_state(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, QUOTA)
    add_call(store, T0 - timedelta(seconds=5), is_error=True, error_type="insufficient_quota")
    assert kinds(eng.tick()) == [("firing", "")]
    store.run_write(lambda con: con.execute("ALTER TABLE calls RENAME COLUMN error_type TO error_type_x"))
    clock.advance(hours=1)
    r = eng.tick()
    assert kinds(r) == [] and "quota" in r.errors  # can't tell is not fine: no resolution
    store.run_write(lambda con: con.execute("ALTER TABLE calls RENAME COLUMN error_type_x TO error_type"))
    assert kinds(eng.tick()) == [("resolved", "")]


def test_group_by_tag_and_disabled_rules(store: Store) -> None:
    clock = Clock(T0)
    text = QUOTA + 'group_by = ["tag:team"]\n' + QUOTA.replace('"quota"', '"off"') + "enabled = false\n"
    eng = engine_for(store, clock, text)
    add_call(store, T0 - timedelta(seconds=5), error_type="insufficient_quota", tags={"team": "search"})
    add_call(store, T0 - timedelta(seconds=5), error_type="rate_limit_exceeded", tags={"team": "chat"})
    assert kinds(eng.tick()) == [("firing", "tag:team=search")]


def test_pending_that_clears_never_notifies(store: Store) -> None:
    clock = Clock(T0)
    eng = engine_for(store, clock, QUOTA + 'for = "5m"\n')
    add_call(store, T0 - timedelta(seconds=5), error_type="insufficient_quota")
    assert kinds(eng.tick()) == []
    cur = store.cursor()
    assert cur.execute("SELECT state FROM alert_state").fetchall() == [("pending",)]
    clock.advance(minutes=16)  # gone before the 5 minutes were up at a later check
    assert kinds(eng.tick()) == []
    assert cur.execute("SELECT state FROM alert_state").fetchall() == [("ok",)]
    cur.close()


def test_config_rejects_bad_tag_key() -> None:
    from spendscope.collector.alerts.config import AlertsConfigError

    from .helpers import config

    with pytest.raises(AlertsConfigError, match="group_by"):
        config(QUOTA + 'group_by = ["tag:it\'s"]\n')


def test_rule_removed_from_config_closes_quietly(store: Store) -> None:
    clock = Clock(T0)
    add_call(store, T0 - timedelta(seconds=5), error_type="insufficient_quota")
    assert kinds(engine_for(store, clock, QUOTA).tick()) == [("firing", "")]
    clock.advance(minutes=1)
    assert kinds(engine_for(store, clock, UNPRICED).tick()) == []
    cur = store.cursor()
    assert cur.execute("SELECT rule, state FROM alert_state").fetchall() == [("quota", "resolved")]
    cur.close()
