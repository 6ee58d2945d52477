"""Notification channels: each renders an alert event for its receiver and sends it once.

``send(channel, payload)`` makes one attempt and reports the outcome; retries, backoff and the
record of attempts belong to :mod:`spendscope.collector.alerts.delivery`.
"""

from __future__ import annotations

from typing import Any

from spendscope.collector.alerts.channels import email, pagerduty, slack, webhook
from spendscope.collector.alerts.channels.transport import Outcome, post_json
from spendscope.collector.alerts.config import ChannelConfig, PagerDutyChannel, SlackChannel, WebhookChannel

__all__ = ["Outcome", "post_json", "send"]


def send(channel: ChannelConfig, payload: dict[str, Any]) -> Outcome:
    """Deliver ``payload`` (see ``state.event_payload``) through ``channel``: one attempt."""
    if isinstance(channel, SlackChannel):
        return slack.send(channel, payload)
    if isinstance(channel, WebhookChannel):
        return webhook.send(channel, payload)
    if isinstance(channel, PagerDutyChannel):
        return pagerduty.send(channel, payload)
    return email.send(channel, payload)
