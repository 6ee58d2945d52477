"""What the fake saw: one record per HTTP request, for tests that assert on the wire."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_RECORDED_BODY", "MAX_RECORDED_REQUESTS", "RecordedRequest", "RequestLog", "redact"]

MAX_RECORDED_REQUESTS = 10_000  # oldest records fall off: benchmarks send far more
MAX_RECORDED_BODY = 1 << 20

# Credentials never enter the record (the project rule): tests identify the key by api_key_id.
_SECRET_HEADERS = frozenset({"authorization", "api-key"})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names; authorization and api-key redacted
    body: bytes  # at most MAX_RECORDED_BODY bytes
    ts: float = 0.0  # the fake's clock
    api_key_id: str | None = None  # "key_" + sha256(key)[:16], like the Usage API
    body_truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "ts": self.ts,
            "api_key_id": self.api_key_id,
            "body_truncated": self.body_truncated,
        }


def redact(headers: dict[str, str]) -> dict[str, str]:
    for name in _SECRET_HEADERS:
        if name in headers:
            headers[name] = "<redacted>"
    return headers


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED_REQUESTS)

    def add(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def items(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
