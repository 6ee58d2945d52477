"""PagerDuty Events API v2: trigger while firing, resolve at resolution, same dedup key.

The dedup key is rule + scope + incident number, so PagerDuty groups re-notifications into one
incident and the resolve closes exactly the incident our trigger opened.
"""

from __future__ import annotations

from typing import Any

from spendscope.collector.alerts.channels.text import title
from spendscope.collector.alerts.channels.transport import Outcome, post_json
from spendscope.collector.alerts.config import PagerDutyChannel

__all__ = ["render", "send"]

_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def render(channel: PagerDutyChannel, payload: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": channel.routing_key,
        "dedup_key": payload["dedup_key"],
        "event_action": "resolve" if payload["event"] == "resolved" else "trigger",
    }
    if body["event_action"] == "trigger":
        body["payload"] = {
            "summary": f"{title(payload)}: {payload['message']}"[:1024],
            "source": "spendscope",
            "severity": _SEVERITY.get(payload["severity"], "warning"),
            "component": payload["rule"],
            "group": payload["kind"],
            "custom_details": {
                k: payload.get(k) for k in ("scope", "value", "threshold", "started_at", "event", "incident")
            },
        }
    return body


def send(channel: PagerDutyChannel, payload: dict[str, Any]) -> Outcome:
    return post_json(channel.url, render(channel, payload), channel.timeout_s)
