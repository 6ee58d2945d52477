"""Notification channels: each renders an alert event for its receiver and sends it once.

``send(channel, payload)`` makes one attempt and reports the outcome; retries, backoff and the
record of attempts belong to :mod:`spendscope.collector.alerts.delivery`.
"""

from __future__ import annotations

from typing import Any

from spendscope.collector.alerts.channels import email, pagerduty, slack, webhook
from spendscope.collector.alerts.channels.transport import Outcome, post_json
from spendscope.collector.alerts.config import ChannelConfig

__all__ = ["Outcome", "post_json", "send"]


def send(channel: ChannelConfig, payload: dict[str, Any]) -> Outcome:
    """Deliver ``payload`` (see ``state.event_payload``) through ``channel``: one attempt."""
    if channel.type == "slack":
        return slack.send(channel, payload)
    if channel.type == "webhook":
        return webhook.send(channel, payload)
    if channel.type == "pagerduty":
        return pagerduty.send(channel, payload)
    if channel.type == "email":
        return email.send(channel, payload)
    return Outcome(False, None, f"unknown channel type {channel.type!r}")
