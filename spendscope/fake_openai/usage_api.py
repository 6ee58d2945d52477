"""The fake's organization Usage and Costs API, aggregated from its own ledger.

It reproduces what a sync has to cope with on the real API: the first bucket starts at the
requested ``start_time`` (unaligned), the last one ends at "now", empty buckets are returned,
array parameters come as ``k[]=v`` or ``k=v``, cursors are opaque and tied to their query, ``limit``
counts buckets with a range per width, and recent buckets change when the ledger is revised.

Settings (prices, result profile, data lag, faults) live per ledger, so two fakes in one process
do not see each other's knobs; :func:`set_default_prices` changes the fallback price dict.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spendscope.fake_openai.ledger import Ledger
from spendscope.fake_openai.usage_buckets import (
    COSTS_GROUP_BY,
    ENDPOINTS,
    LIMITS,
    WIDTH_SECONDS,
    FakePrice,
    bucket_edges,
    costs_results,
    parse_query,
    usage_results,
)

__all__ = [
    "DEFAULT_PRICES",
    "Fault",
    "UsageApiSettings",
    "handle",
    "reset",
    "set_default_prices",
    "settings_for",
]

# The fake's own price list, USD per million tokens: deliberately independent of spendscope.pricing.
DEFAULT_PRICES: dict[str, FakePrice] = {
    "gpt-4o-mini-2024-07-18": {
        "input": Decimal("0.15"),
        "cached_input": Decimal("0.075"),
        "output": Decimal("0.60"),
    },
    "gpt-4o-mini": {"input": Decimal("0.15"), "cached_input": Decimal("0.075"), "output": Decimal("0.60")},
    "gpt-4o-2024-08-06": {
        "input": Decimal("2.50"),
        "cached_input": Decimal("1.25"),
        "output": Decimal("10.00"),
    },
    "gpt-4o": {"input": Decimal("2.50"), "cached_input": Decimal("1.25"), "output": Decimal("10.00")},
    "text-embedding-3-small": {"input": Decimal("0.02")},
    "*": {"input": Decimal("1.00"), "output": Decimal("4.00")},
}
_default_prices: dict[str, FakePrice] = dict(DEFAULT_PRICES)


def set_default_prices(prices: Mapping[str, FakePrice] | None) -> None:
    """Replace the fallback price dict for every ledger without its own (None restores the defaults)."""
    global _default_prices
    _default_prices = dict(DEFAULT_PRICES if prices is None else prices)


@dataclass
class Fault:
    """Answer the ``nth`` (1-based) matching request, and ``times - 1`` after it, with ``status``.

    ``hold`` makes the matching request wait on an event (bounded by ``hold_s``) before answering,
    so a test can kill a client while it waits for a page.
    """

    path_contains: str
    nth: int = 1
    times: int = 1
    status: int = 429
    retry_after: str | None = "0"
    retry_after_ms: str | None = None
    hold: threading.Event | None = None
    hold_s: float = 10.0
    seen: int = 0
    fired: int = 0


@dataclass
class UsageApiSettings:
    prices: dict[str, FakePrice] | None = None  # None: the module default
    profile: str = "v2026"  # "v2025": the 2025 field set and group_by enums
    string_amount: bool = False  # costs amount.value as a JSON string, as some proxies send
    lag_s: float = 0.0  # usage newer than now - lag_s is not visible yet
    admin_prefix: str = "sk-admin-"
    faults: list[Fault] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # "path?query" of every request, in order


_settings: weakref.WeakKeyDictionary[Ledger, UsageApiSettings] = weakref.WeakKeyDictionary()
_settings_lock = threading.Lock()


def settings_for(ledger: Ledger) -> UsageApiSettings:
    """The (mutable) Usage API settings of the fake that owns ``ledger``."""
    with _settings_lock:
        s = _settings.get(ledger)
        if s is None:
            s = _settings[ledger] = UsageApiSettings()
        return s


def reset(ledger: Ledger) -> UsageApiSettings:
    """Back to the defaults for this ledger's fake (``FakeOpenAI.reset`` does not know about these)."""
    with _settings_lock:
        s = _settings[ledger] = UsageApiSettings()
        return s


class _ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


_DEC_MARK = "\u0000dec:"
_DEC_RE = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def _encode(obj: Any, string_amount: bool) -> bytes:
    """JSON with Decimals written exactly: as numbers (the spec) or as strings (``string_amount``)."""

    def fix(o: Any) -> Any:
        if isinstance(o, Decimal):
            text = format(o.normalize(), "f")
            return text if string_amount else _DEC_MARK + text
        if isinstance(o, dict):
            return {k: fix(v) for k, v in o.items()}
        if isinstance(o, list):
            return [fix(v) for v in o]
        return o

    # json cannot write a Decimal as a number, so mark it as a string and unquote it afterwards.
    text = json.dumps(fix(obj), separators=(",", ":"))
    return _DEC_RE.sub(r"\1", text).encode()


def _error_body(message: str, type_: str, param: str | None, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


def _int_param(q: Mapping[str, list[str]], name: str, required: bool = False) -> int | None:
    values = q.get(name)
    if not values:
        if required:
            raise _ApiError(400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
        return None
    try:
        return int(values[-1])
    except ValueError:
        raise _ApiError(400, f"Invalid value for '{name}': expected an integer.", name) from None


def _cursor(next_start: int, qhash: bytes) -> str:
    return "page_" + base64.urlsafe_b64encode(struct.pack(">q", next_start) + qhash).decode()


def _decode_cursor(page: str, qhash: bytes) -> int:
    try:
        raw = base64.urlsafe_b64decode(page.removeprefix("page_").encode())
        (start,) = struct.unpack(">q", raw[:8])
    except (ValueError, struct.error):
        raise _ApiError(400, "Invalid page cursor.", "page") from None
    if raw[8:] != qhash:
        raise _ApiError(400, "The page cursor does not belong to this query.", "page")
    return int(start)


def _query_hash(q: Mapping[str, list[str]]) -> bytes:
    canon = json.dumps(sorted((k, sorted(v)) for k, v in q.items() if k != "page"))
    return hashlib.sha256(canon.encode()).digest()[:8]


def _page(
    kind: str, q: dict[str, list[str]], ledger: Ledger, now: float, st: UsageApiSettings
) -> dict[str, Any]:
    start = _int_param(q, "start_time", required=True)
    assert start is not None
    end = _int_param(q, "end_time")
    width_name = (q.get("bucket_width") or ["1d"])[-1]
    if kind == "costs":
        if width_name != "1d":
            raise _ApiError(
                400, f"Invalid bucket_width '{width_name}': costs support only '1d'.", "bucket_width"
            )
        default_limit, max_limit = 7, 180
        allowed = COSTS_GROUP_BY["v2025" if st.profile == "v2025" else "v2026"]
    else:
        if width_name not in WIDTH_SECONDS:
            raise _ApiError(400, f"Invalid bucket_width '{width_name}'.", "bucket_width")
        default_limit, max_limit = LIMITS[width_name]
        allowed = ENDPOINTS[kind].group_by
        if st.profile == "v2025":
            allowed = tuple(k for k in allowed if k != "service_tier")
    limit = _int_param(q, "limit")
    limit = default_limit if limit is None else limit
    if not 1 <= limit <= max_limit:
        raise _ApiError(
            400,
            f"Invalid limit {limit}: must be between 1 and {max_limit} for bucket_width {width_name}.",
            "limit",
        )
    group_by = list(dict.fromkeys(q.get("group_by", [])))
    for g in group_by:
        if g not in allowed:
            raise _ApiError(400, f"Invalid group_by value '{g}'.", "group_by")

    qhash = _query_hash(q)
    first = _decode_cursor(q["page"][-1], qhash) if q.get("page") else start
    # The last bucket ends at "now": rounded up so a request stamped this very second is visible.
    horizon = int(now) + 1 if end is None else min(end, int(now) + 1)
    edges = bucket_edges(first, horizon, WIDTH_SECONDS[width_name])
    page_edges = edges[:limit]
    has_more = len(edges) > limit

    visible_before = now - st.lag_s
    rows = [r for r in ledger.billed() if r.ts <= visible_before]
    filters = {
        dim: q.get(param, [])
        for param, dim in (
            ("project_ids", "project_id"),
            ("user_ids", "user_id"),
            ("api_key_ids", "api_key_id"),
            ("models", "model"),
            ("line_items", "line_item"),
            ("sizes", "size"),
            ("sources", "source"),
            ("vector_store_ids", "vector_store_id"),
            ("context_levels", "context_level"),
        )
    }
    if kind == "costs":
        prices = st.prices or _default_prices
        results = costs_results(
            rows, page_edges, group_by=group_by, filters=filters, prices=prices, profile=st.profile
        )
    else:
        batch_values = q.get("batch")
        batch = None if not batch_values else batch_values[-1].lower() == "true"
        results = usage_results(
            ENDPOINTS[kind],
            rows,
            page_edges,
            group_by=group_by,
            filters=filters,
            batch=batch,
            profile=st.profile,
        )
    return {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": s, "end_time": e, "results": res}
            for (s, e), res in zip(page_edges, results, strict=True)
        ],
        "has_more": has_more,
        "next_page": _cursor(page_edges[-1][1], qhash) if has_more else None,
    }


def _fault(path: str, st: UsageApiSettings) -> Fault | None:
    for f in st.faults:
        if f.path_contains not in path:
            continue
        f.seen += 1
        if f.seen >= f.nth and f.fired < f.times:
            f.fired += 1
            return f
    return None


def handle(
    method: str, path: str, query: str, headers: Mapping[str, str], ledger: Ledger, now: float
) -> tuple[int, dict[str, str], bytes]:
    """Answer one ``/v1/organization/...`` request: (status, headers, body)."""
    st = settings_for(ledger)
    json_headers = {"content-type": "application/json"}
    st.requests.append(f"{path}?{query}")
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization", "")
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not key.startswith(st.admin_prefix):
        shown = (key[:8] + "***" + key[-4:]) if len(key) > 12 else "***"
        msg = (
            f"Incorrect API key provided: {shown}. Organization usage and costs require an admin key."
            if key
            else "You didn't provide an API key. Provide an admin key in the Authorization header."
        )
        return 401, json_headers, _error_body(msg, "invalid_request_error", None, "invalid_api_key")

    fault = _fault(path, st)
    if fault is not None:
        if fault.hold is not None:
            fault.hold.wait(fault.hold_s)
        extra = {}
        if fault.retry_after is not None:
            extra["retry-after"] = fault.retry_after
        if fault.retry_after_ms is not None:
            extra["retry-after-ms"] = fault.retry_after_ms
        if fault.status == 429:
            body = _error_body(
                "Rate limit reached for usage requests.", "requests", None, "rate_limit_exceeded"
            )
        else:
            body = _error_body("The server had an error processing your request.", "server_error", None, None)
        return fault.status, json_headers | extra, body

    if method.upper() != "GET":
        return (
            405,
            json_headers,
            _error_body(f"Method {method} not allowed.", "invalid_request_error", None, None),
        )
    route = path.split("?", 1)[0].rstrip("/")
    prefix = "/v1/organization/"
    tail = route[len(prefix) :] if route.startswith(prefix) else ""
    if tail == "costs":
        kind = "costs"
    elif tail.startswith("usage/") and tail[6:] in ENDPOINTS:
        kind = tail[6:]
    else:
        msg = f"Invalid URL (GET {route})"
        return 404, json_headers, _error_body(msg, "invalid_request_error", None, "unknown_url")
    try:
        page = _page(kind, parse_query(query), ledger, now, st)
    except _ApiError as e:
        return e.status, json_headers, _error_body(e.message, "invalid_request_error", e.param, e.code)
    return 200, json_headers, _encode(page, st.string_amount)
