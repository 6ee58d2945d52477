"""Fault injection: what a test can ask the fake to do wrong, and when.

Two channels share one vocabulary (see ``FAULT_KEYS``):

* the request header ``x-fake-fault: status=429;code=rate_limit_exceeded;retry_after_ms=50;times=2``
  (``;``-separated ``key=value`` pairs; a bare ``key`` means ``key=1``). ``times=N`` faults only
  the first N attempts of one SDK call, judged by ``x-stainless-retry-count`` (or, for clients that
  do not send it, by counting requests that carry the same header value);
* rules ``{"match": {"method", "path", "model", "nth", "times"}, "action": {<same keys>}}`` added
  with ``FakeOpenAI.inject`` or ``POST /__fake/faults``. A rule counts the requests it matches and
  fires for the ``nth`` (1-based, default 1) and the ``times - 1`` after it (default: every one).
  ``path`` matches the request path exactly or as a suffix ("/chat/completions" also matches Azure).

Keys (N = a count; frame counts are SSE events before the effect):

=====================  ==========================================================================
``status=N``           answer with this status (body from ``code``, else a realistic default)
``code=C``             OpenAI error code: rate_limit_exceeded, insufficient_quota,
                       context_length_exceeded, invalid_api_key, model_not_found, server_error...
                       (alone it implies the status; with ``stream_error`` it names the error)
``type=T``             error type, e.g. ``requests``/``tokens`` for rate limits
``message=M``          override the error message
``body=json|html|empty``  error body kind (502/504 default to an HTML page)
``retry_after=S``      ``retry-after`` header, verbatim;  ``retry_after_ms=MS`` likewise
``should_retry=B``     ``x-should-retry: true|false``
``times=N``            fault only the first N attempts
``ttfb_ms=MS``         sleep before the status line (alias ``delay_ms``)
``chunk_delay_ms=MS``  sleep before every stream chunk
``stall_after=N``      stop writing after N chunks for ``stall_ms`` (default 10000), then go on
``truncate[=N]``       stream: N whole frames then half a frame, then close the socket without the
                       terminating chunk (bare: half way); JSON: honest length, body cut in half
``no_done``            chat/completions stream ends cleanly without ``data: [DONE]``
``done``               Responses stream gets a ``data: [DONE]`` it normally lacks
``no_usage``           ``include_usage`` requested but the usage chunk (Responses: the terminal
                       event) is not sent
``malformed[=N]``      insert ``data: {not json}`` after N frames (bare: 2)
``stream_error[=N]``   after N frames: chat ``data: {"error": {...}}``; Responses a nested
                       ``event: error`` then ``response.failed``; the stream then ends
``flat_error[=N]``     Responses: the spec's flat ``error`` event, then the stream ends
``comments``           ``: keep-alive`` comment lines before every event
``crlf``               CRLF line endings
``split=N``            write the stream in N-byte pieces, ignoring frame boundaries
``multiline``          JSON spread over several ``data:`` lines
``legacy``             2024-style chat chunks: no ``usage: null``, service_tier, obfuscation or
                       token details
=====================  ==========================================================================
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["FAULT_KEYS", "Fault", "FaultError", "FaultRules", "Rule", "fault_from_mapping", "parse_fault"]

_MAX_RULES = 256
_MAX_HEADER_COUNTERS = 1024
_MAX_DELAY_MS = 120_000  # a fault may slow a request, never hang a test run forever


class FaultError(ValueError):
    """A fault spec or rule that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed fault. Fields left at their defaults do nothing."""

    status: int | None = None  # answer with this HTTP status instead of a normal reply
    code: str | None = None  # OpenAI error code; also the in-stream error's code
    type: str | None = None  # error type ("tokens"/"requests" for rate limits)
    message: str | None = None
    body: str | None = None  # "json" | "html" | "empty" for error replies
    retry_after: str | None = None  # sent verbatim as retry-after
    retry_after_ms: str | None = None  # sent verbatim as retry-after-ms
    should_retry: str | None = None  # "true"/"false" -> x-should-retry
    times: int | None = None  # only the first N attempts
    ttfb_ms: int = 0  # sleep before the status line
    chunk_delay_ms: int = 0  # sleep before every stream chunk
    stall_after: int | None = None  # stall after this many stream frames ...
    stall_ms: int = 10_000  # ... for this long
    truncate: int | None = None  # stream: cut mid-frame after N whole frames (-1: half way); JSON: cut body
    no_done: bool = False  # chat/completions: end without data: [DONE]
    done: bool = False  # responses: append data: [DONE] (robustness tests)
    no_usage: bool = False  # include_usage requested, usage chunk not sent
    malformed: int | None = None  # insert "data: {not json}" after N frames
    stream_error: int | None = None  # in-stream error after N frames (nested shape), then end
    flat_error: int | None = None  # responses: spec-shaped flat `error` event after N frames
    comments: bool = False  # ": keep-alive" comment lines between events
    crlf: bool = False  # CRLF line endings
    split: int | None = None  # write the stream in pieces of this many bytes
    multiline: bool = False  # JSON spread over several data: lines
    legacy: bool = False  # 2024-style chat stream: no usage:null, service_tier, obfuscation, details

    @property
    def is_error(self) -> bool:
        # a code alone means an HTTP error; with an in-stream error it names that error instead
        in_stream = self.stream_error is not None or self.flat_error is not None
        return self.status is not None or (self.code is not None and not in_stream)

    @property
    def touches_stream(self) -> bool:
        return (
            self.chunk_delay_ms > 0
            or self.stall_after is not None
            or self.truncate is not None
            or self.no_done
            or self.done
            or self.no_usage
            or self.malformed is not None
            or self.stream_error is not None
            or self.flat_error is not None
            or self.comments
            or self.crlf
            or self.split is not None
            or self.multiline
            or self.legacy
        )


_INT_KEYS = {"status", "times", "ttfb_ms", "chunk_delay_ms", "stall_after", "stall_ms", "split"}
# Keys that are a count of frames; given bare ("truncate") they take a sensible default.
_FRAME_KEYS = {"truncate": -1, "malformed": 2, "stream_error": 2, "flat_error": 2}
_BOOL_KEYS = {"no_done", "done", "no_usage", "comments", "crlf", "multiline", "legacy"}
_STR_KEYS = {"code", "type", "message", "body", "retry_after", "retry_after_ms", "should_retry"}
_ALIASES = {"delay_ms": "ttfb_ms", "error": "stream_error", "retry-after": "retry_after"}
FAULT_KEYS: frozenset[str] = frozenset(f.name for f in fields(Fault))


def _to_int(key: str, value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise FaultError(f"fault key {key!r} needs an integer, got {value!r}")


def _to_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def fault_from_mapping(values: Mapping[str, Any]) -> Fault:
    kwargs: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = _ALIASES.get(raw_key, raw_key)
        if key in _FRAME_KEYS:
            number = _FRAME_KEYS[key] if value is True or value in ("", "1", "true") else _to_int(key, value)
            kwargs[key] = number
        elif key in _INT_KEYS:
            kwargs[key] = _to_int(key, value)
        elif key in _BOOL_KEYS:
            kwargs[key] = _to_bool(value)
        elif key in _STR_KEYS:
            kwargs[key] = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            raise FaultError(f"unknown fault key {raw_key!r}")
    for key in ("ttfb_ms", "chunk_delay_ms", "stall_ms"):
        if key in kwargs:
            kwargs[key] = max(0, min(_MAX_DELAY_MS, kwargs[key]))
    if "split" in kwargs and kwargs["split"] < 1:
        raise FaultError("split needs a positive byte count")
    return Fault(**kwargs)


def parse_fault(spec: str) -> Fault:
    """Parse the ``x-fake-fault`` header syntax: ``key=value;key=value;flag``."""
    values: dict[str, Any] = {}
    for raw_part in spec.split(";"):
        part = raw_part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        values[key.strip()] = value.strip() if sep else True
    return fault_from_mapping(values)


@dataclass(slots=True)
class Rule:
    method: str | None
    path: str | None
    model: str | None
    nth: int
    times: int | None
    fault: Fault
    seen: int = 0
    fired: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "match": {
                "method": self.method,
                "path": self.path,
                "model": self.model,
                "nth": self.nth,
                "times": self.times,
            },
            "seen": self.seen,
            "fired": self.fired,
        }


def _rule_from_mapping(rule: Mapping[str, Any]) -> Rule:
    match = rule.get("match") or {}
    action = rule.get("action") or {}
    if not isinstance(match, Mapping) or not isinstance(action, Mapping):
        raise FaultError("a rule needs 'match' and 'action' objects")
    action = dict(action)
    times_value = match.get("times", action.pop("times", None))
    times = None if times_value is None else _to_int("times", times_value)
    nth = _to_int("nth", match.get("nth", 1))
    if nth < 1 or (times is not None and times < 1):
        raise FaultError("nth and times must be positive")
    method = match.get("method")
    path = match.get("path")
    model = match.get("model")
    return Rule(
        method=str(method).upper() if method else None,
        path=str(path) if path else None,
        model=str(model) if model else None,
        nth=nth,
        times=times,
        fault=fault_from_mapping(action),
    )


class FaultRules:
    """The active rules plus the per-header attempt counters, all thread-safe and bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._header_counts: dict[str, int] = {}
        self._cache: dict[str, Fault] = {}

    def add(self, rule: Mapping[str, Any]) -> None:
        parsed = _rule_from_mapping(rule)
        with self._lock:
            if len(self._rules) >= _MAX_RULES:
                raise FaultError(f"at most {_MAX_RULES} fault rules")
            self._rules.append(parsed)

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.describe() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._header_counts.clear()

    def from_header(self, spec: str, retry_count: int | None) -> Fault | None:
        """The header's fault if it applies to this attempt (``times`` honoured)."""
        fault = self._cache.get(spec)
        if fault is None:
            fault = parse_fault(spec)
            if len(self._cache) < _MAX_HEADER_COUNTERS:
                self._cache[spec] = fault
        if fault.times is None:
            return fault
        if retry_count is None:  # no SDK retry header: count attempts per spec instead
            with self._lock:
                if spec not in self._header_counts and len(self._header_counts) >= _MAX_HEADER_COUNTERS:
                    self._header_counts.clear()
                retry_count = self._header_counts.get(spec, 0)
                self._header_counts[spec] = retry_count + 1
        return fault if retry_count < fault.times else None

    def match(self, method: str, path: str, model: str | None) -> Fault | None:
        if not self._rules:  # the common case costs one attribute read
            return None
        chosen: Fault | None = None
        with self._lock:
            for rule in self._rules:  # every matching rule counts the request; the first due one fires
                if rule.method is not None and rule.method != method:
                    continue
                if rule.path is not None and path != rule.path and not path.endswith(rule.path):
                    continue
                if rule.model is not None and rule.model != model:
                    continue
                rule.seen += 1
                if chosen is not None or rule.seen < rule.nth:
                    continue
                if rule.times is not None and rule.seen >= rule.nth + rule.times:
                    continue
                rule.fired += 1
                chosen = rule.fault
        return chosen
