"""Notification channels: each renders an alert event for its receiver and sends it once.

``send(channel, payload)`` makes one attempt and reports the outcome; retries, backoff and the
record of attempts belong to :mod:`spendscope.collector.alerts.delivery`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from spendscope.collector.alerts.config import ChannelConfig, PagerDutyChannel, SlackChannel, WebhookChannel

__all__ = ["Outcome", "post_json", "send"]


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None


def post_json(
    url: str, body: dict[str, Any], timeout_s: float, headers: dict[str, str] | None = None
) -> Outcome:
    """One POST with a hard timeout; any 2xx is delivered, everything else is a readable error."""
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False) as client:
            resp = client.post(url, json=body, headers=headers or {})
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= resp.status_code < 300:
        return Outcome(True, resp.status_code)
    return Outcome(False, resp.status_code, f"HTTP {resp.status_code}: {resp.text[:300]}")


def send(channel: ChannelConfig, payload: dict[str, Any]) -> Outcome:
    """Deliver ``payload`` (see ``state.event_payload``) through ``channel``: one attempt."""
    from spendscope.collector.alerts.channels import email, pagerduty, slack, webhook

    if isinstance(channel, SlackChannel):
        return slack.send(channel, payload)
    if isinstance(channel, WebhookChannel):
        return webhook.send(channel, payload)
    if isinstance(channel, PagerDutyChannel):
        return pagerduty.send(channel, payload)
    return email.send(channel, payload)
