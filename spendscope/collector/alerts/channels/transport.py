"""What one delivery attempt gives (:class:`Outcome`) and the JSON POST most channels make."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Outcome", "post_json"]


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
        with (
            httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False) as client,
            client.stream("POST", url, json=body, headers=headers or {}) as resp,
        ):
            status = resp.status_code
            # Only the start of an answer is kept: a receiver cannot make the collector hold a huge body.
            head = b""
            for chunk in resp.iter_bytes():
                head += chunk
                if len(head) >= _KEEP:
                    break
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return Outcome(True, status)
    text = head[:_KEEP].decode("utf-8", "replace")
    return Outcome(False, status, f"HTTP {status}: {text}")


_KEEP = 300
