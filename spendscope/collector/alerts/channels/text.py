"""The human-readable title every channel shares."""

from __future__ import annotations

from typing import Any

__all__ = ["title"]

_VERB = {
    "firing": "FIRING",
    "escalated": "ESCALATED",
    "renotify": "STILL FIRING",
    "resolved": "RESOLVED",
    "test": "TEST",
}


def title(payload: dict[str, Any]) -> str:
    scope = f" [{payload['scope_key']}]" if payload.get("scope_key") else ""
    verb = _VERB.get(str(payload.get("event")), str(payload.get("event")).upper())
    return f"[{verb}] {payload.get('severity', '')} {payload['rule']}{scope}"
