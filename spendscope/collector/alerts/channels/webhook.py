"""Generic JSON webhook: the event payload as is (see ``state.event_payload``)."""

from __future__ import annotations

from typing import Any

from spendscope.collector.alerts.channels.text import title
from spendscope.collector.alerts.channels.transport import Outcome, post_json
from spendscope.collector.alerts.config import WebhookChannel

__all__ = ["render", "send"]


def render(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "title": title(payload), "source": "spendscope"}


def send(channel: WebhookChannel, payload: dict[str, Any]) -> Outcome:
    # The event id as a header too, for receivers that deduplicate on headers (idempotency keys).
    headers = {**dict(channel.headers), "X-Spendscope-Event-Id": str(payload.get("event_id", ""))}
    return post_json(channel.url, render(payload), channel.timeout_s, headers)
