"""Slack incoming webhook: ``{"text": ...}`` plus one attachment coloured by severity."""

from __future__ import annotations

from typing import Any

from spendscope.collector.alerts.channels.text import title
from spendscope.collector.alerts.channels.transport import Outcome, post_json
from spendscope.collector.alerts.config import SlackChannel

__all__ = ["render", "send"]

_COLOUR = {"critical": "#d32f2f", "warning": "#f9a825", "info": "#1976d2"}


def render(payload: dict[str, Any]) -> dict[str, Any]:
    colour = "#2e7d32" if payload["event"] == "resolved" else _COLOUR.get(payload["severity"], "#757575")
    return {
        "text": f"{title(payload)}: {payload['message']}",
        "attachments": [
            {
                "color": colour,
                "fields": [
                    {"title": "value", "value": str(payload.get("value")), "short": True},
                    {"title": "threshold", "value": str(payload.get("threshold")), "short": True},
                    {"title": "since", "value": str(payload.get("started_at")), "short": True},
                ],
            }
        ],
    }


def send(channel: SlackChannel, payload: dict[str, Any]) -> Outcome:
    return post_json(channel.url, render(payload), channel.timeout_s)
