"""Parse ``[alerts]``, ``[[alerts.rules]]`` and ``[alerts.channels.<name>]`` from the collector's TOML.

Every error names the file, the key and what is wrong, so a bad rule stops the collector at start
instead of silently never firing. Secrets (webhook URLs, routing keys, SMTP passwords) may be given
as ``<key>_env = "VAR"`` and are then read from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from spendscope.collector.config import ConfigError

__all__ = [
    "CHANNEL_TYPES",
    "DIMENSIONS",
    "PAGERDUTY_DEFAULT_URL",
    "RULE_KINDS",
    "SEVERITIES",
    "AlertsConfig",
    "AlertsConfigError",
    "ChannelConfig",
    "RuleConfig",
    "parse_alerts",
    "parse_duration",
]

PAGERDUTY_DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = ("info", "warning", "critical")
# Scope dimensions and the calls column each one reads; tags are ``tag:<key>``.
DIMENSIONS = {
    "project": "project",
    "model": "model",
    "service": "service",
    "user": "user_id",
    "feature": "feature",
}
CHANNEL_TYPES = ("slack", "webhook", "pagerduty", "email")

# kind -> (allowed kind-specific keys, required keys)
RULE_KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "budget": (
        frozenset({"period", "amount_usd", "thresholds", "projected"}),
        frozenset({"period", "amount_usd"}),
    ),
    "spend_spike": (frozenset({"window", "baseline_days", "multiplier", "min_usd"}), frozenset()),
    "error_rate": (frozenset({"window", "threshold_pct", "min_calls"}), frozenset({"threshold_pct"})),
    "rate_429": (frozenset({"window", "threshold_pct", "min_calls"}), frozenset({"threshold_pct"})),
    "insufficient_quota": (frozenset({"window"}), frozenset()),
    "ratelimit_headroom": (frozenset({"window", "min_headroom_pct", "on"}), frozenset({"min_headroom_pct"})),
    "latency": (
        frozenset({"window", "metric", "percentile", "threshold_s", "min_calls"}),
        frozenset({"threshold_s"}),
    ),
    "capture_rate": (frozenset({"days", "lag_days", "min_rate", "max_rate", "min_billed_usd"}), frozenset()),
    "sync_failure": (frozenset({"max_age"}), frozenset()),
    "unpriced_models": (frozenset({"window"}), frozenset()),
}
_COMMON_RULE_KEYS = frozenset(
    {"name", "kind", "severity", "scope", "group_by", "channels", "renotify", "for", "enabled"}
)
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class AlertsConfigError(ConfigError):
    """An alert rule or channel is invalid; the message names file, key and problem."""


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str
    type: str
    url: str | None = None  # slack, webhook, pagerduty
    routing_key: str | None = None  # pagerduty
    headers: Mapping[str, str] = field(default_factory=dict)  # webhook
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    email_from: str = "spendscope@localhost"
    email_to: tuple[str, ...] = ()
    timeout_s: float = 5.0
    max_attempts: int = 5


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    kind: str
    severity: str
    scope: Mapping[str, str]  # fixed filters: dimension -> value
    group_by: tuple[str, ...]  # one alert instance per distinct value of these dimensions
    channels: tuple[str, ...]
    renotify_s: int
    for_s: int
    params: Mapping[str, Any]  # the kind's own keys, validated and defaulted
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    rules: tuple[RuleConfig, ...] = ()
    channels: Mapping[str, ChannelConfig] = field(default_factory=dict)
    interval_s: int = 60

    def rule(self, name: str) -> RuleConfig | None:
        return next((r for r in self.rules if r.name == name), None)


def parse_duration(value: Any, where: str) -> int:
    """Seconds from an int (seconds) or a string like ``"15m"``, ``"1h"``, ``"7d"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())):
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise AlertsConfigError(
            f'{where} must be a duration like "15m", "1h", "1d" or seconds, got {value!r}'
        )
    if seconds <= 0:
        raise AlertsConfigError(f"{where} must be positive, got {value!r}")
    return seconds


class _Reader:
    def __init__(self, path: str, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env

    def err(self, key: str, problem: str) -> AlertsConfigError:
        return AlertsConfigError(f"{self.path}: {key}: {problem}")

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        default: float,
        lo: float | None = None,
        hi: float | None = None,
    ) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.err(f"{where}.{key}", f"must be a number, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.err(f"{where}.{key}", f"must be between {lo} and {hi}, got {value!r}")
        return float(value)

    def integer(self, table: Mapping[str, Any], key: str, where: str, default: int, lo: int = 0) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.err(f"{where}.{key}", f"must be an integer, got {value!r}")
        if value < lo:
            raise self.err(f"{where}.{key}", f"must be >= {lo}, got {value}")
        return value

    def money(self, table: Mapping[str, Any], key: str, where: str, default: str) -> Decimal:
        value = table.get(key, default)
        # Strings keep money exact; a TOML float would already be binary-rounded.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.err(f"{where}.{key}", f'must be an amount like "100.00", got {value!r}')
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.err(f"{where}.{key}", f'must be an amount like "100.00", got {value!r}') from None
        if not amount.is_finite() or amount < 0:
            raise self.err(f"{where}.{key}", f"must be a non-negative amount, got {value!r}")
        return amount

    def duration(
        self, table: Mapping[str, Any], key: str, where: str, default: int, allow_zero: bool = False
    ) -> int:
        if key not in table:
            return default
        if allow_zero and table[key] in (0, "0"):
            return 0
        return parse_duration(table[key], f"{self.path}: {where}.{key}")

    def secret(self, table: Mapping[str, Any], key: str, where: str, required: bool) -> str | None:
        env_key = f"{key}_env"
        if key in table and env_key in table:
            raise self.err(f"{where}.{key}", f"give either {key} or {env_key}, not both")
        if env_key in table:
            var = table[env_key]
            if not isinstance(var, str) or not var:
                raise self.err(f"{where}.{env_key}", f"must name an environment variable, got {var!r}")
            value = self.env.get(var)
            if not value:
                raise self.err(f"{where}.{env_key}", f"environment variable {var} is not set")
            return value
        value = table.get(key)
        if value is None:
            if required:
                raise self.err(f"{where}.{key}", f"is required (or {env_key})")
            return None
        if not isinstance(value, str) or not value:
            raise self.err(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
        return value


def _check_keys(r: _Reader, table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise r.err(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _dimension(r: _Reader, name: Any, where: str) -> str:
    if isinstance(name, str) and (
        name in DIMENSIONS or (name.startswith("tag:") and _TAG_KEY.match(name[4:]))
    ):
        return name
    raise r.err(
        where,
        f"unknown dimension {name!r} (use {', '.join(DIMENSIONS)} or tag:<key> with key in [A-Za-z0-9_.:/-])",
    )


def _channel(r: _Reader, name: str, table: Any) -> ChannelConfig:
    where = f"alerts.channels.{name}"
    if not isinstance(table, dict):
        raise r.err(where, "must be a table")
    ctype = table.get("type")
    if ctype not in CHANNEL_TYPES:
        raise r.err(f"{where}.type", f"must be one of {', '.join(CHANNEL_TYPES)}, got {ctype!r}")
    common = {"type", "timeout_s", "max_attempts"}
    per_type = {
        "slack": {"url", "url_env"},
        "webhook": {"url", "url_env", "headers"},
        "pagerduty": {"url", "routing_key", "routing_key_env"},
        "email": {"host", "port", "starttls", "username", "password", "password_env", "from", "to"},
    }
    _check_keys(r, table, frozenset(common | per_type[ctype]), where)
    timeout_s = r.number(table, "timeout_s", where, 5.0, 0.1, 120.0)
    max_attempts = r.integer(table, "max_attempts", where, 5, 1)
    if ctype in ("slack", "webhook"):
        url = r.secret(table, "url", where, required=True)
        assert url is not None
        if not url.startswith(("http://", "https://")):
            raise r.err(f"{where}.url", f"must be an http(s) URL, got {url!r}")
        headers = table.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise r.err(f"{where}.headers", "must be a table of strings")
        return ChannelConfig(
            name, ctype, url=url, headers=dict(headers), timeout_s=timeout_s, max_attempts=max_attempts
        )
    if ctype == "pagerduty":
        url = table.get("url", PAGERDUTY_DEFAULT_URL)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise r.err(f"{where}.url", f"must be an http(s) URL, got {url!r}")
        key = r.secret(table, "routing_key", where, required=True)
        return ChannelConfig(
            name, ctype, url=url, routing_key=key, timeout_s=timeout_s, max_attempts=max_attempts
        )
    to = table.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
        raise r.err(f"{where}.to", f"must be an address or a list of addresses, got {to!r}")
    host = table.get("host", "localhost")
    if not isinstance(host, str) or not host:
        raise r.err(f"{where}.host", f"must be a host name, got {host!r}")
    sender = table.get("from", "spendscope@localhost")
    if not isinstance(sender, str) or "@" not in sender:
        raise r.err(f"{where}.from", f"must be an address, got {sender!r}")
    starttls = table.get("starttls", False)
    if not isinstance(starttls, bool):
        raise r.err(f"{where}.starttls", f"must be true or false, got {starttls!r}")
    username = table.get("username")
    if username is not None and not isinstance(username, str):
        raise r.err(f"{where}.username", f"must be a string, got {username!r}")
    return ChannelConfig(
        name,
        ctype,
        smtp_host=host,
        smtp_port=r.integer(table, "port", where, 25, 1),
        smtp_starttls=starttls,
        smtp_username=username,
        smtp_password=r.secret(table, "password", where, required=False),
        email_from=sender,
        email_to=tuple(to),
        timeout_s=timeout_s,
        max_attempts=max_attempts,
    )


def _params(r: _Reader, kind: str, t: Mapping[str, Any], where: str) -> dict[str, Any]:
    p: dict[str, Any] = {}
    if kind == "budget":
        period = t.get("period")
        if period not in ("day", "week", "month"):
            raise r.err(f"{where}.period", f"must be day, week or month, got {period!r}")
        p["period"] = period
        p["amount_usd"] = r.money(t, "amount_usd", where, "0")
        if p["amount_usd"] <= 0:
            raise r.err(f"{where}.amount_usd", "must be positive")
        th = t.get("thresholds", [100])
        if (
            not isinstance(th, list)
            or not th
            or not all(isinstance(x, int | float) and not isinstance(x, bool) and 0 < x <= 1000 for x in th)
        ):
            raise r.err(
                f"{where}.thresholds", f"must be a list of percentages like [50, 80, 100], got {th!r}"
            )
        p["thresholds"] = tuple(sorted(float(x) for x in th))
        projected = t.get("projected", True)
        if not isinstance(projected, bool):
            raise r.err(f"{where}.projected", f"must be true or false, got {projected!r}")
        p["projected"] = projected
    elif kind == "spend_spike":
        p["window_s"] = r.duration(t, "window", where, 3600)
        p["baseline_days"] = r.integer(t, "baseline_days", where, 7, 1)
        p["multiplier"] = r.number(t, "multiplier", where, 3.0, 1.0)
        p["min_usd"] = r.money(t, "min_usd", where, "10")
    elif kind in ("error_rate", "rate_429"):
        p["window_s"] = r.duration(t, "window", where, 900)
        p["threshold_pct"] = r.number(t, "threshold_pct", where, 0.0, 0.0, 100.0)
        p["min_calls"] = r.integer(t, "min_calls", where, 20, 1)
    elif kind in ("insufficient_quota", "unpriced_models"):
        p["window_s"] = r.duration(t, "window", where, 900 if kind == "insufficient_quota" else 86400)
    elif kind == "ratelimit_headroom":
        p["window_s"] = r.duration(t, "window", where, 900)
        p["min_headroom_pct"] = r.number(t, "min_headroom_pct", where, 0.0, 0.0, 100.0)
        on = t.get("on", "either")
        if on not in ("tokens", "requests", "either"):
            raise r.err(f"{where}.on", f"must be tokens, requests or either, got {on!r}")
        p["on"] = on
    elif kind == "latency":
        p["window_s"] = r.duration(t, "window", where, 900)
        metric = t.get("metric", "duration")
        if metric not in ("duration", "ttfc"):
            raise r.err(f"{where}.metric", f"must be duration or ttfc, got {metric!r}")
        p["metric"] = metric
        p["percentile"] = r.number(t, "percentile", where, 95.0, 1.0, 100.0)
        p["threshold_s"] = r.number(t, "threshold_s", where, 0.0, 0.0)
        p["min_calls"] = r.integer(t, "min_calls", where, 20, 1)
    elif kind == "capture_rate":
        p["days"] = r.integer(t, "days", where, 7, 1)
        p["lag_days"] = r.integer(t, "lag_days", where, 1, 0)
        p["min_rate"] = r.number(t, "min_rate", where, 0.9, 0.0)
        p["max_rate"] = r.number(t, "max_rate", where, 1.1, 0.0)
        p["min_billed_usd"] = r.money(t, "min_billed_usd", where, "1")
        if p["max_rate"] < p["min_rate"]:
            raise r.err(f"{where}.max_rate", "must be >= min_rate")
    elif kind == "sync_failure":
        p["max_age_s"] = r.duration(t, "max_age", where, 7200)
    return p


def _rule(
    r: _Reader, i: int, t: Any, channels: Mapping[str, ChannelConfig], defaults: Mapping[str, int]
) -> RuleConfig:
    where = f"alerts.rules[{i}]"
    if not isinstance(t, dict):
        raise r.err(where, "must be a table ([[alerts.rules]])")
    name = t.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
        raise r.err(f"{where}.name", f"must be letters, digits, '_', '-', '.', got {name!r}")
    where = f"alerts.rules[{i}] ({name})"
    kind = t.get("kind")
    if kind not in RULE_KINDS:
        raise r.err(f"{where}.kind", f"must be one of {', '.join(RULE_KINDS)}, got {kind!r}")
    allowed, required = RULE_KINDS[kind]
    _check_keys(r, t, _COMMON_RULE_KEYS | allowed, where)
    for key in sorted(required):
        if key not in t:
            raise r.err(f"{where}.{key}", f"is required for kind {kind}")
    severity = t.get("severity", "critical" if kind == "insufficient_quota" else "warning")
    if severity not in SEVERITIES:
        raise r.err(f"{where}.severity", f"must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    scope_t = t.get("scope", {})
    if not isinstance(scope_t, dict):
        raise r.err(f"{where}.scope", 'must be a table like {project = "web"}')
    scope: dict[str, str] = {}
    for dim, value in scope_t.items():
        key = f"tag:{dim[4:]}" if dim.startswith("tag:") else dim
        _dimension(r, key, f"{where}.scope.{dim}")
        if not isinstance(value, str):
            raise r.err(f"{where}.scope.{dim}", f"must be a string, got {value!r}")
        scope[key] = value
    group_by = t.get("group_by", [])
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list):
        raise r.err(f"{where}.group_by", "must be a list of dimensions")
    dims = tuple(_dimension(r, g, f"{where}.group_by") for g in group_by)
    if (
        kind in ("capture_rate", "sync_failure")
        and (scope or dims)
        and not set(scope) | set(dims) <= {"project"}
    ):
        raise r.err(f"{where}.scope", f"{kind} can only be scoped by project")
    ch = t.get("channels", [])
    if not isinstance(ch, list) or not all(isinstance(c, str) for c in ch):
        raise r.err(f"{where}.channels", "must be a list of channel names")
    for c in ch:
        if c not in channels:
            raise r.err(
                f"{where}.channels", f"unknown channel {c!r} (defined: {', '.join(channels) or 'none'})"
            )
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        raise r.err(f"{where}.enabled", "must be true or false")
    return RuleConfig(
        name=name,
        kind=kind,
        severity=severity,
        scope=scope,
        group_by=dims,
        channels=tuple(ch),
        renotify_s=r.duration(t, "renotify", where, defaults["renotify_s"]),
        for_s=r.duration(t, "for", where, defaults["for_s"], allow_zero=True),
        params=_params(r, kind, t, where),
        enabled=enabled,
    )


def parse_alerts(
    raw: Mapping[str, Any], path: str | None, env: Mapping[str, str] | None = None
) -> AlertsConfig:
    """The alerts section of the collector's config; raises :class:`AlertsConfigError` on any problem."""
    r = _Reader(path or "<config>", os.environ if env is None else env)
    section = raw.get("alerts", {})
    if not isinstance(section, dict):
        raise r.err("alerts", "must be a table")
    _check_keys(r, section, frozenset({"rules", "channels", "interval", "renotify", "for"}), "alerts")
    interval_s = r.duration(section, "interval", "alerts", 60)
    defaults = {
        "renotify_s": r.duration(section, "renotify", "alerts", 4 * 3600),
        "for_s": r.duration(section, "for", "alerts", 0, allow_zero=True),
    }
    chans_t = section.get("channels", {})
    if not isinstance(chans_t, dict):
        raise r.err("alerts.channels", "must be a table of [alerts.channels.<name>] tables")
    channels = {name: _channel(r, name, t) for name, t in chans_t.items()}
    rules_t = section.get("rules", [])
    if not isinstance(rules_t, list):
        raise r.err("alerts.rules", "must be an array of tables ([[alerts.rules]])")
    rules = tuple(_rule(r, i, t, channels, defaults) for i, t in enumerate(rules_t))
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise r.err("alerts.rules", f"two rules are named {rule.name!r}: names must be unique")
        seen.add(rule.name)
    return AlertsConfig(rules=rules, channels=channels, interval_s=interval_s)
