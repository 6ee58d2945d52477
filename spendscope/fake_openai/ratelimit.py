"""Token-bucket rate limits behind the fake's ``x-ratelimit-*`` headers.

Each (project, model) pair has two buckets, requests and tokens, that refill linearly to their
per-minute limit. A request drains them; the reset headers say how long until the bucket is full
again, formatted like Go's ``time.Duration`` as the real API does ("6ms", "1.5s", "6m0s").
By default the buckets only report; ``enforce`` turns an empty bucket into a real 429.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Limits", "RateLimiter", "RateState", "format_duration"]

_SECONDS_PER_WINDOW = 60.0
_MAX_BUCKETS = 4096  # bounded: a client inventing model names must not grow memory without end


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_min: int
    tokens_per_min: int


# Per model family, similar in size to real tier-5 limits; the first matching prefix wins.
_DEFAULT_LIMITS: tuple[tuple[str, Limits], ...] = (
    ("gpt-4o-mini", Limits(30_000, 150_000_000)),
    ("gpt-4.1-mini", Limits(30_000, 150_000_000)),
    ("gpt-4.1-nano", Limits(30_000, 150_000_000)),
    ("gpt-5-mini", Limits(30_000, 180_000_000)),
    ("gpt-5-nano", Limits(30_000, 180_000_000)),
    ("gpt-5", Limits(15_000, 40_000_000)),
    ("gpt-4o", Limits(10_000, 30_000_000)),
    ("gpt-4.1", Limits(10_000, 30_000_000)),
    ("o", Limits(10_000, 30_000_000)),
    ("text-embedding", Limits(10_000, 10_000_000)),
)
_FALLBACK = Limits(5_000, 4_000_000)


@dataclass(frozen=True, slots=True)
class RateState:
    """What one request saw, ready for the response headers."""

    limit_requests: int
    remaining_requests: int
    reset_requests: str
    limit_tokens: int
    remaining_tokens: int
    reset_tokens: str
    exhausted: str | None  # "requests" or "tokens" when enforcement refused the request
    retry_after_s: float


def format_duration(seconds: float) -> str:
    """Go ``time.Duration.String()`` style, rounded to milliseconds: "0s", "120ms", "1.5s", "6m0s"."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = rest / 1000
    sec_text = f"{secs:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{sec_text}s"
    if minutes:
        return f"{minutes}m{sec_text}s"
    return f"{sec_text}s"


class _Bucket:
    __slots__ = ("level", "stamp")

    def __init__(self, level: float, stamp: float) -> None:
        self.level = level
        self.stamp = stamp


class RateLimiter:
    """Thread-safe buckets keyed by (project, model)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._overrides: dict[str, Limits] = {}
        self.enforce = False

    def limits_for(self, model: str) -> Limits:
        override = self._overrides.get(model)
        if override is not None:
            return override
        for prefix, limits in _DEFAULT_LIMITS:
            if model.startswith(prefix):
                return limits
        return _FALLBACK

    def set_limits(self, model: str, requests_per_min: int, tokens_per_min: int) -> None:
        with self._lock:
            self._overrides[model] = Limits(requests_per_min, tokens_per_min)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._overrides.clear()
            self.enforce = False

    def _drain(self, key: tuple[str, str, str], capacity: int, cost: float, now: float) -> tuple[float, bool]:
        """Refill, then take ``cost`` if allowed; returns (level after, refused)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(float(capacity), now)
        rate = capacity / _SECONDS_PER_WINDOW
        elapsed = max(0.0, now - bucket.stamp)  # a clock set backwards refills nothing
        bucket.level = min(float(capacity), bucket.level + elapsed * rate)
        bucket.stamp = now
        if self.enforce and bucket.level < cost:
            return bucket.level, True
        bucket.level = max(0.0, bucket.level - cost)
        return bucket.level, False

    def take(self, project: str, model: str, tokens: int, now: float) -> RateState:
        limits = self.limits_for(model)
        rpm, tpm = limits.requests_per_min, limits.tokens_per_min
        rkey, tkey = (project, model, "r"), (project, model, "t")
        with self._lock:
            req_level, req_refused = self._drain(rkey, rpm, 1.0, now)
            tok_refused = False
            if req_refused:
                tok_level, _ = self._drain(tkey, tpm, 0.0, now)
            else:
                tok_level, tok_refused = self._drain(tkey, tpm, float(tokens), now)
                if tok_refused:  # give the request back: a refused call consumes nothing
                    req_level = min(float(rpm), req_level + 1.0)
                    bucket = self._buckets.get(rkey)
                    if bucket is not None:
                        bucket.level = req_level
        req_reset = (rpm - req_level) / (rpm / _SECONDS_PER_WINDOW)
        tok_reset = (tpm - tok_level) / (tpm / _SECONDS_PER_WINDOW)
        exhausted = "requests" if req_refused else ("tokens" if tok_refused else None)
        retry_after = 0.0
        if req_refused:
            retry_after = (1.0 - req_level) / (rpm / _SECONDS_PER_WINDOW)
        elif tok_refused:
            retry_after = (tokens - tok_level) / (tpm / _SECONDS_PER_WINDOW)
        return RateState(
            limit_requests=rpm,
            remaining_requests=int(req_level),
            reset_requests=format_duration(req_reset),
            limit_tokens=tpm,
            remaining_tokens=int(tok_level),
            reset_tokens=format_duration(tok_reset),
            exhausted=exhausted,
            retry_after_s=retry_after,
        )
