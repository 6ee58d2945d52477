"""Config parsing: a valid file with every kind and channel, and errors that name file, key and problem."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from spendscope.collector.alerts.config import PAGERDUTY_DEFAULT_URL, AlertsConfigError, parse_alerts
from spendscope.collector.config import ConfigError

FULL = """
[alerts]
interval = "30s"
renotify = "2h"

[alerts.channels.slack]
type = "slack"
url_env = "SLACK_WEBHOOK_URL"

[alerts.channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
headers = {X-Token = "abc"}

[alerts.channels.pd]
type = "pagerduty"
routing_key_env = "PD_KEY"

[alerts.channels.mail]
type = "email"
host = "127.0.0.1"
port = 2525
from = "alerts@example.com"
to = ["oncall@example.com"]
password_env = "SMTP_PASSWORD"
username = "alerts"

[[alerts.rules]]
name = "monthly-budget"
kind = "budget"
period = "month"
amount_usd = "1000.00"
thresholds = [50, 80, 100]
scope = {project = "web"}
channels = ["slack", "mail"]

[[alerts.rules]]
name = "spike"
kind = "spend_spike"
group_by = ["model", "tag:team"]

[[alerts.rules]]
name = "errors"
kind = "error_rate"
threshold_pct = 5
min_calls = 50
window = "15m"
for = "5m"

[[alerts.rules]]
name = "r429"
kind = "rate_429"
threshold_pct = 10

[[alerts.rules]]
name = "quota"
kind = "insufficient_quota"
channels = ["pd"]

[[alerts.rules]]
name = "headroom"
kind = "ratelimit_headroom"
min_headroom_pct = 10

[[alerts.rules]]
name = "ttfc"
kind = "latency"
metric = "ttfc"
percentile = 99
threshold_s = 2.5

[[alerts.rules]]
name = "capture"
kind = "capture_rate"
group_by = ["project"]

[[alerts.rules]]
name = "sync"
kind = "sync_failure"
max_age = "3h"

[[alerts.rules]]
name = "unpriced"
kind = "unpriced_models"

[[alerts.rules]]
name = "drift"
kind = "price_drift"
group_by = ["model"]
"""

ENV = {"SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack", "PD_KEY": "rk", "SMTP_PASSWORD": "pw"}


def test_full_config_parses_with_defaults_and_env_secrets() -> None:
    cfg = parse_alerts(tomllib.loads(FULL), "collector.toml", ENV)
    assert cfg.interval_s == 30
    assert [r.kind for r in cfg.rules] == [
        "budget",
        "spend_spike",
        "error_rate",
        "rate_429",
        "insufficient_quota",
        "ratelimit_headroom",
        "latency",
        "capture_rate",
        "sync_failure",
        "unpriced_models",
        "price_drift",
    ]
    drift = cfg.rule("drift")
    assert drift is not None and drift.params == {"threshold_pct": 2.0, "days": 7}
    budget = cfg.rule("monthly-budget")
    assert budget is not None
    assert budget.params["amount_usd"] == Decimal("1000.00")
    assert budget.params["thresholds"] == (50.0, 80.0, 100.0)
    assert budget.renotify_s == 7200 and budget.scope == {"project": "web"}
    assert cfg.rule("quota").severity == "critical"  # type: ignore[union-attr]
    assert cfg.rule("errors").for_s == 300  # type: ignore[union-attr]
    assert cfg.rule("spike").group_by == ("model", "tag:team")  # type: ignore[union-attr]
    assert cfg.channels["slack"].url == ENV["SLACK_WEBHOOK_URL"]
    assert cfg.channels["pd"].url == PAGERDUTY_DEFAULT_URL and cfg.channels["pd"].routing_key == "rk"
    assert cfg.channels["mail"].smtp_password == "pw" and cfg.channels["hook"].headers == {"X-Token": "abc"}


def test_no_alerts_section_is_empty() -> None:
    cfg = parse_alerts({}, None, {})
    assert cfg.rules == () and dict(cfg.channels) == {}


BAD = [
    ('[[alerts.rules]]\nname = "x"\nkind = "nope"', "alerts.rules[0] (x).kind", "must be one of"),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "budget"\nperiod = "year"\namount_usd = "1"',
        ".period",
        "day, week",
    ),
    ('[[alerts.rules]]\nname = "x"\nkind = "budget"\nperiod = "day"', ".amount_usd", "is required"),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "budget"\nperiod = "day"\namount_usd = "abc"',
        ".amount_usd",
        "amount",
    ),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "error_rate"\nthreshold_pct = 5\nwindow = "5 parsecs"',
        ".window",
        "duration",
    ),
    ('[[alerts.rules]]\nname = "x"\nkind = "error_rate"\nthreshold_pct = 500', ".threshold_pct", "between"),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "error_rate"\nthreshold_pct = 5\nchannels = ["ghost"]',
        ".channels",
        "unknown channel 'ghost'",
    ),
    ('[[alerts.rules]]\nname = "x"\nkind = "unpriced_models"\ntypo = 1', "(x).typo", "unknown key"),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "unpriced_models"\ngroup_by = ["region"]',
        ".group_by",
        "unknown dimension",
    ),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "unpriced_models"\n'
        '[[alerts.rules]]\nname = "x"\nkind = "unpriced_models"',
        "alerts.rules",
        "unique",
    ),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "price_drift"\nscope = {project = "web"}',
        "alerts.rules[0] (x).scope",
        "price_drift can only be scoped or grouped by model",
    ),
    (
        '[[alerts.rules]]\nname = "x"\nkind = "capture_rate"\ngroup_by = ["model"]',
        "alerts.rules[0] (x).scope",
        "capture_rate can only be scoped or grouped by project",
    ),
    ('[alerts.channels.s]\ntype = "slack"', "alerts.channels.s.url", "is required"),
    ('[alerts.channels.s]\ntype = "slack"\nurl = "ftp://x"', "alerts.channels.s.url", "http(s) URL"),
    (
        '[alerts.channels.s]\ntype = "slack"\nurl_env = "UNSET_VAR_X"',
        "alerts.channels.s.url_env",
        "UNSET_VAR_X is not set",
    ),
    ('[alerts.channels.p]\ntype = "pagerduty"', "alerts.channels.p.routing_key", "is required"),
    ('[alerts.channels.m]\ntype = "email"\nto = "nobody"', "alerts.channels.m.to", "address"),
    ('[alerts.channels.m]\ntype = "sms"', "alerts.channels.m.type", "must be one of"),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD)
def test_errors_name_file_key_and_problem(text: str, key: str, problem: str) -> None:
    with pytest.raises(AlertsConfigError) as info:
        parse_alerts(tomllib.loads(text), "/etc/spendscope.toml", {})
    msg = str(info.value)
    assert msg.startswith("/etc/spendscope.toml: ")
    assert key in msg and problem in msg
    assert isinstance(info.value, ConfigError)  # the collector reports it like its own config errors
