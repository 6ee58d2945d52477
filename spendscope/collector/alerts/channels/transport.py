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
        with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False) as client:
            resp = client.post(url, json=body, headers=headers or {})
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= resp.status_code < 300:
        return Outcome(True, resp.status_code)
    return Outcome(False, resp.status_code, f"HTTP {resp.status_code}: {resp.text[:300]}")
