"""``[alerts]``, ``[[alerts.rules]]`` and ``[alerts.channels.<name>]`` of the collector's config file.

A rule is a model per kind and a channel a model per type, each key declared once. A bad rule stops
the collector at start with the file, the key and the problem, instead of silently never firing.
Secrets (webhook URLs, routing keys, SMTP passwords) may be given as ``<key>_env = "VAR"``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from spendscope.collector.durations import Duration, DurationOrZero
from spendscope.collector.section import (
    ConfigError,
    Flag,
    HttpUrl,
    Int,
    Number,
    Section,
    Text,
    fail,
    setting,
)
from spendscope.collector.validation import validate

__all__ = [
    "CHANNEL_MODELS",
    "DIMENSIONS",
    "PAGERDUTY_DEFAULT_URL",
    "RULE_MODELS",
    "SEVERITIES",
    "AlertsConfig",
    "AlertsConfigError",
    "BudgetRule",
    "CaptureRateRule",
    "ChannelConfig",
    "EmailChannel",
    "ErrorRateRule",
    "InsufficientQuotaRule",
    "LatencyRule",
    "PagerDutyChannel",
    "Rate429Rule",
    "RatelimitHeadroomRule",
    "RuleConfig",
    "SlackChannel",
    "SpendSpikeRule",
    "SyncFailureRule",
    "UnpricedModelsRule",
    "WebhookChannel",
    "parse_alerts",
]

PAGERDUTY_DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
# Scope dimensions and the calls column each one reads; tags are ``tag:<key>``.
DIMENSIONS = {
    "project": "project",
    "model": "model",
    "service": "service",
    "user": "user_id",
    "feature": "feature",
}
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")
_RULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_RENOTIFY_S = 4 * 3600


class AlertsConfigError(ConfigError):
    """An alert rule or channel is invalid; the message names file, key and problem."""


def _dimension(name: str) -> str:
    if name in DIMENSIONS or (name.startswith("tag:") and _TAG_KEY.match(name[4:])):
        return name
    raise ValueError(f"unknown dimension (use {', '.join(DIMENSIONS)} or tag:<key>, key in [A-Za-z0-9_.:/-])")


def _rule_name(name: str) -> str:
    if not _RULE_NAME.fullmatch(name):
        raise ValueError("must be letters, digits, '_', '-', '.' (at most 100)")
    return name


def _money(value: Any) -> Decimal:
    # Strings keep money exact; a TOML float is already binary-rounded, so it goes through str().
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidOperation
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError('must be an amount like "100.00"') from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be a non-negative amount")
    return amount


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValueError("must be positive")
    return amount


def _address(value: str) -> str:
    if "@" not in value:
        raise ValueError("must be an email address")
    return value


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value  # a single item may be given alone


def _nonempty(items: tuple[Any, ...]) -> tuple[Any, ...]:
    if not items:
        raise ValueError("must not be empty")
    return items


Dimension = Annotated[StrictStr, AfterValidator(_dimension)]
Money = Annotated[Decimal, PlainValidator(_money), WithJsonSchema({"type": "string", "x-type": "amount"})]
Address = Annotated[StrictStr, AfterValidator(_address)]
Percentages = Annotated[
    tuple[Annotated[Number, Field(gt=0, le=1000)], ...],
    AfterValidator(_nonempty),
    AfterValidator(lambda t: tuple(sorted(t))),
]


# --- rules -------------------------------------------------------------------------------------


class RuleConfig(Section):
    """Keys every rule has, with `kind`: one of the kinds below, each with keys of its own."""

    name: Annotated[StrictStr, AfterValidator(_rule_name)] = setting(
        help="Unique; letters, digits, `_`, `-`, `.`."
    )
    kind: str = setting(help="One of the kinds below.")
    severity: Severity = setting("warning", help="`info`, `warning` or `critical`.")
    scope: Mapping[Dimension, StrictStr] = setting(
        default_factory=dict,
        help='Fixed filters, e.g. `{project = "web", model = "gpt-4o"}`; dimensions `project`, '
        "`model`, `service`, `user`, `feature`, `tag:<key>`. Default: everything.",
    )
    group_by: Annotated[tuple[Dimension, ...], BeforeValidator(_listed)] = setting(
        (), help='One alert instance per value, e.g. `["project"]` or `["model", "tag:team"]`.'
    )
    channels: tuple[Text, ...] = setting((), help="Names of `[alerts.channels.<name>]` tables.")
    renotify_s: Duration = setting(
        _RENOTIFY_S,
        key="renotify",
        help="Re-notification interval while firing; default: `[alerts] renotify`.",
    )
    for_s: DurationOrZero = setting(
        0, key="for", help="How long the condition must hold before it fires; default: `[alerts] for`."
    )
    enabled: Flag = setting(True, help="`false` keeps the rule in the file without evaluating it.")

    # Kinds whose metric has no dimension other than the project.
    project_only: ClassVar[bool] = False

    @property
    def params(self) -> Mapping[str, Any]:
        """The kind's own keys by attribute name (``window_s``), validated and defaulted."""
        return {n: getattr(self, n) for n in type(self).model_fields if n not in RuleConfig.model_fields}

    @model_validator(mode="after")
    def _scoped_by_project(self) -> Self:
        if self.project_only and not set(self.scope) | set(self.group_by) <= {"project"}:
            fail((("scope",), f"{self.kind} can only be scoped or grouped by project"))
        return self


def _window(default: float) -> Any:
    return setting(default, key="window", help="The time window the rule reads.")


class BudgetRule(RuleConfig):
    """Spend per calendar day, ISO week or month (UTC) against an amount."""

    kind: Literal["budget"]
    period: Literal["day", "week", "month"] = setting(help="`day`, `week` or `month`.")
    amount_usd: Annotated[Money, AfterValidator(_positive)] = setting(help="The budget, USD.")
    thresholds: Percentages = setting(
        (100.0,), help="Percentages of `amount_usd` that notify, e.g. `[50, 80, 100]`."
    )
    projected: Flag = setting(
        True, help="Also fire when the burn rate since the period began projects past the amount."
    )


class SpendSpikeRule(RuleConfig):
    """Spend in a window against the mean of the same window over the preceding days."""

    kind: Literal["spend_spike"]
    window_s: Duration = _window(3600)
    baseline_days: Int = setting(7, ge=1, help="Days of baseline before the window.")
    multiplier: Number = setting(3.0, ge=1, help="Fires above this multiple of the baseline.")
    min_usd: Money = setting(Decimal("10"), help="And only from this spend in the window, USD.")


class _RateRule(RuleConfig):
    window_s: Duration = _window(900)
    threshold_pct: Number = setting(ge=0, le=100, help="Fires above this share of calls, percent.")
    min_calls: Int = setting(20, ge=1, help="With fewer calls in the window there is no data.")


class ErrorRateRule(_RateRule):
    """The share of calls (HTTP attempts) that failed."""

    kind: Literal["error_rate"]


class Rate429Rule(_RateRule):
    """The share of calls that got HTTP 429."""

    kind: Literal["rate_429"]


class InsufficientQuotaRule(RuleConfig):
    """A call refused with `insufficient_quota`: the account is out of credit."""

    kind: Literal["insufficient_quota"]
    severity: Severity = setting("critical", help="`critical` by default: page at once.")
    window_s: Duration = _window(900)


class RatelimitHeadroomRule(RuleConfig):
    """The latest remaining share of the rate limit in the window."""

    kind: Literal["ratelimit_headroom"]
    window_s: Duration = _window(900)
    min_headroom_pct: Number = setting(ge=0, le=100, help="Fires below this remaining share, percent.")
    on: Literal["tokens", "requests", "either"] = setting(
        "either", help="`tokens`, `requests` or `either` limit."
    )


class LatencyRule(RuleConfig):
    """A percentile of latency or of time to first chunk."""

    kind: Literal["latency"]
    window_s: Duration = _window(900)
    metric: Literal["duration", "ttfc"] = setting("duration", help="`duration` or `ttfc`.")
    percentile: Number = setting(95.0, ge=1, le=100, help="The percentile compared.")
    threshold_s: Number = setting(ge=0, help="Fires above this many seconds.")
    min_calls: Int = setting(20, ge=1, help="With fewer calls in the window there is no data.")


class CaptureRateRule(RuleConfig):
    """Tracked spend against billed spend (from the sync), by whole UTC days."""

    kind: Literal["capture_rate"]
    project_only: ClassVar[bool] = True
    days: Int = setting(7, ge=1, help="Whole UTC days compared.")
    lag_days: Int = setting(1, ge=0, help="Ending this many days ago (billing lags).")
    min_rate: Number = setting(0.9, ge=0, help="Fires below this tracked/billed ratio.")
    max_rate: Number = setting(1.1, ge=0, help="Fires above this ratio (over-pricing, double counting).")
    min_billed_usd: Money = setting(Decimal("1"), help="Only from this billed spend, USD.")

    @model_validator(mode="after")
    def _rates_in_order(self) -> Self:
        if self.max_rate < self.min_rate:
            fail((("max_rate",), f"must be >= min_rate ({self.min_rate:g}), got {self.max_rate:g}"))
        return self


class SyncFailureRule(RuleConfig):
    """The last Usage/Costs sync failed, or none succeeded recently."""

    kind: Literal["sync_failure"]
    project_only: ClassVar[bool] = True
    max_age_s: Duration = setting(7200, key="max_age", help="Fires when no run succeeded for this long.")


class UnpricedModelsRule(RuleConfig):
    """Calls to models with no price in the window."""

    kind: Literal["unpriced_models"]
    window_s: Duration = _window(86400)


RULE_MODELS: tuple[type[RuleConfig], ...] = (
    BudgetRule,
    SpendSpikeRule,
    ErrorRateRule,
    Rate429Rule,
    InsufficientQuotaRule,
    RatelimitHeadroomRule,
    LatencyRule,
    CaptureRateRule,
    SyncFailureRule,
    UnpricedModelsRule,
)
AnyRule = Annotated[
    BudgetRule
    | SpendSpikeRule
    | ErrorRateRule
    | Rate429Rule
    | InsufficientQuotaRule
    | RatelimitHeadroomRule
    | LatencyRule
    | CaptureRateRule
    | SyncFailureRule
    | UnpricedModelsRule,
    Field(discriminator="kind"),
]


# --- channels ----------------------------------------------------------------------------------


class _Channel(Section):
    """Keys every channel has, with `type`: one of the types below."""

    name: str = setting("", internal=True, help="The `<name>` of its table.")
    timeout_s: Number = setting(5.0, ge=0.1, le=120, help="The timeout of one attempt, seconds.")
    max_attempts: Int = setting(5, ge=1, help="Attempts (with backoff) before a delivery is `failed`.")


class SlackChannel(_Channel):
    """A Slack incoming webhook."""

    type: Literal["slack"]
    url: HttpUrl = setting(secret=True, help="The incoming webhook URL.")


class WebhookChannel(_Channel):
    """Any HTTP receiver: the event as JSON."""

    type: Literal["webhook"]
    url: HttpUrl = setting(secret=True, help="The URL the event is POSTed to.")
    headers: Mapping[str, StrictStr] = setting(default_factory=dict, help="Extra request headers.")


class PagerDutyChannel(_Channel):
    """PagerDuty Events API v2."""

    type: Literal["pagerduty"]
    url: HttpUrl = setting(PAGERDUTY_DEFAULT_URL, help="The Events API endpoint.")
    routing_key: Text = setting(secret=True, help="The integration's routing key.")


class EmailChannel(_Channel):
    """Email over SMTP."""

    type: Literal["email"]
    email_to: Annotated[tuple[Address, ...], BeforeValidator(_listed), AfterValidator(_nonempty)] = setting(
        key="to", help="An address or a list of addresses."
    )
    email_from: Address = setting("spendscope@localhost", key="from", help="The sender address.")
    smtp_host: Text = setting("localhost", key="host", help="The SMTP server.")
    smtp_port: Int = setting(25, key="port", ge=1, help="Its port.")
    smtp_starttls: Flag = setting(False, key="starttls", help="Upgrade the connection with STARTTLS.")
    smtp_username: StrictStr | None = setting(None, key="username", help="Log in with this user.")
    smtp_password: Text | None = setting(None, key="password", secret=True, help="And this password.")


CHANNEL_MODELS = (SlackChannel, WebhookChannel, PagerDutyChannel, EmailChannel)
ChannelConfig = Annotated[
    SlackChannel | WebhookChannel | PagerDutyChannel | EmailChannel, Field(discriminator="type")
]


# --- the section -------------------------------------------------------------------------------


class AlertsConfig(Section):
    """How often rules are evaluated, their defaults, the channels and the rules."""

    interval_s: Duration = setting(60, key="interval", help="How often rules are evaluated.")
    renotify_s: Duration = setting(
        _RENOTIFY_S, key="renotify", help="The default re-notification interval of every rule."
    )
    for_s: DurationOrZero = setting(
        0, key="for", help="The default time a condition must hold before it fires (0: at once)."
    )
    channels: Mapping[str, ChannelConfig] = setting(
        default_factory=dict, help="`[alerts.channels.<name>]`: where alerts are sent."
    )
    rules: tuple[AnyRule, ...] = setting((), help="`[[alerts.rules]]`: the rules.")

    @field_validator("channels")
    @classmethod
    def _named(cls, channels: Mapping[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        return {name: c.model_copy(update={"name": name}) for name, c in channels.items()}

    @field_validator("rules")
    @classmethod
    def _defaults_and_references(cls, rules: tuple[RuleConfig, ...], info: ValidationInfo) -> Any:
        defaults: dict[str, Any] = {k: info.data[k] for k in ("renotify_s", "for_s") if k in info.data}
        channels: Mapping[str, Any] = info.data.get("channels", {})
        checked = "channels" in info.data  # else the channels' own errors are reported
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: set[str] = set()
        out = []
        for i, rule in enumerate(rules):
            unset = {k: v for k, v in defaults.items() if k not in rule.model_fields_set}
            out.append(rule.model_copy(update=unset))
            for c in rule.channels if checked else ():
                if c not in channels:
                    defined = ", ".join(channels) or "none"
                    problems.append(
                        ((i, rule.kind, "channels"), f"unknown channel {c!r} (defined: {defined})")
                    )
            if rule.name in seen:
                problems.append(
                    ((i, rule.kind, "name"), f"two rules are named {rule.name!r}: names must be unique")
                )
            seen.add(rule.name)
        if problems:
            fail(*problems)
        return tuple(out)

    def rule(self, name: str) -> RuleConfig | None:
        return next((r for r in self.rules if r.name == name), None)


def parse_alerts(
    raw: Mapping[str, Any], path: str | None, env: Mapping[str, str] | None = None
) -> AlertsConfig:
    """``[alerts]`` of a whole TOML document, alone (the collector's loader reads every section)."""
    env = os.environ if env is None else env
    section = raw.get("alerts", {})
    return validate(AlertsConfig, section, path=path, env=env, prefix=("alerts",), error=AlertsConfigError)
