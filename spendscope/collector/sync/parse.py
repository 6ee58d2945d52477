"""Pure parsing of Usage and Costs API pages into rows.

The API's field set grew in 2024-12, 2026-07 and 2026-08, so every field but the envelope is
optional here: absent and ``null`` mean the same, unknown keys are ignored, and a value of the
wrong type is treated as absent rather than failing the whole page. Money is ``Decimal``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "COST_DIMENSIONS",
    "METRICS",
    "USAGE_DIMENSIONS",
    "Bucket",
    "CostRow",
    "Page",
    "ParseError",
    "UsageRow",
    "cost_rows",
    "parse_page",
    "to_decimal",
    "to_int",
    "usage_rows",
]

# Dimensions with their own column; any other string dimension goes to ``UsageRow.extra_dims``.
USAGE_DIMENSIONS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
_EXTRA_DIMENSIONS = ("size", "source", "vector_store_id", "context_level", "api_source")
COST_DIMENSIONS = ("project_id", "api_key_id", "line_item", "user_id", "api_source")

# Normalized metric names (the columns of usage_buckets).
METRICS = (
    "num_model_requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "input_audio_tokens",
    "cached_input_audio_tokens",
    "output_audio_tokens",
    "input_image_tokens",
    "cached_input_image_tokens",
    "output_image_tokens",
    "images",
    "characters",
    "seconds",
    "usage_bytes",
    "num_sessions",
    "num_requests",
)
# API field -> normalized name, for fields whose meaning never changed.
_DIRECT = {
    "num_model_requests": "num_model_requests",
    "input_tokens": "input_tokens",
    "input_cached_tokens": "cached_input_tokens",
    "output_tokens": "output_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "output_image_tokens": "output_image_tokens",
    "images": "images",
    "characters": "characters",
    "seconds": "seconds",
    "usage_bytes": "usage_bytes",
    "num_sessions": "num_sessions",
    "num_requests": "num_requests",
}


class ParseError(ValueError):
    """The page is not a Usage/Costs page at all (the envelope is wrong); rows are never guessed."""


@dataclass(frozen=True, slots=True)
class Bucket:
    start: int  # unix seconds, inclusive
    end: int  # unix seconds, exclusive
    results: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Page:
    buckets: tuple[Bucket, ...]
    has_more: bool
    next_page: str | None


@dataclass(frozen=True, slots=True)
class UsageRow:
    endpoint: str
    bucket_start: int
    bucket_end: int
    dims: Mapping[str, str | bool | None]  # USAGE_DIMENSIONS
    extra_dims: Mapping[str, str]  # other dimensions the API set
    metrics: Mapping[str, int | None]  # METRICS; None when the API did not send it
    raw: Mapping[str, Any]

    @property
    def group_key(self) -> str:
        return json.dumps([dict(self.dims), dict(self.extra_dims)], sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class CostRow:
    bucket_start: int
    bucket_end: int
    dims: Mapping[str, str | None]  # COST_DIMENSIONS
    amount: Decimal | None
    currency: str | None
    quantity: Decimal | None
    quantity_unit: str | None
    raw: Mapping[str, Any]

    @property
    def group_key(self) -> str:
        return json.dumps(dict(self.dims), sort_keys=True, separators=(",", ":"))


def to_int(value: Any) -> int | None:
    """An integer count (a 64-bit one, as stored) from an int, an integral number or a numeric
    string; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, float | Decimal | str):
        d = to_decimal(value) if not isinstance(value, Decimal) else (value if value.is_finite() else None)
        if d is None or d != d.to_integral_value():
            return None
        n = int(d)
    else:
        return None
    return n if -(1 << 63) <= n < 1 << 63 else None


def to_decimal(value: Any) -> Decimal | None:
    """Exact money from a JSON number (best parsed with ``parse_float=Decimal``) or a numeric string;
    None for anything else, non-finite, or too large for a DECIMAL(38, 12) column."""
    d = _decimal(value)
    return d if d is not None and abs(d) < _MAX_MONEY else None


_MAX_MONEY = Decimal(10) ** 26


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # str() gives the shortest repr, so 0.06 stays 0.06 instead of its binary expansion.
        return Decimal(str(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def parse_page(doc: Any) -> Page:
    """Validate the page envelope and its buckets; results are kept as mappings for the row parsers."""
    if not isinstance(doc, Mapping):
        raise ParseError(f"expected a JSON object, got {type(doc).__name__}")
    data = doc.get("data")
    if not isinstance(data, list):
        raise ParseError("page has no 'data' list")
    buckets = []
    for i, b in enumerate(data):
        if not isinstance(b, Mapping):
            raise ParseError(f"bucket {i} is not an object")
        start, end = to_int(b.get("start_time")), to_int(b.get("end_time"))
        if start is None or end is None or end <= start:
            raise ParseError(f"bucket {i} has no valid start_time/end_time")
        results = b.get("results")
        # A bucket without a results list is an empty bucket (the API sends results: []).
        items = tuple(r for r in results if isinstance(r, Mapping)) if isinstance(results, list) else ()
        buckets.append(Bucket(start, end, items))
    next_page = _str(doc.get("next_page"))
    return Page(tuple(buckets), doc.get("has_more") is True, next_page)


def _usage_metrics(r: Mapping[str, Any]) -> dict[str, int | None]:
    m: dict[str, int | None] = dict.fromkeys(METRICS)
    for field, name in _DIRECT.items():
        m[name] = to_int(r.get(field))
    # Cache writes: one total since 2026-07; the SDK's 30m/12h split sums to it when the total is absent.
    write = to_int(r.get("input_cache_write_tokens"))
    if write is None:
        parts = [to_int(r.get(k)) for k in ("input_cache_write_30m_tokens", "input_cache_write_12h_tokens")]
        write = sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None
    m["cache_write_input_tokens"] = write
    # input_audio_tokens changed meaning: until 2026 it *included* cached audio; since the 2026-07
    # field set (recognizable by input_cached_audio_tokens) it counts only *uncached* audio. Store the
    # inclusive count either way, like the pricing engine's Usage expects.
    audio = to_int(r.get("input_audio_tokens"))
    cached_audio = to_int(r.get("input_cached_audio_tokens"))
    m["input_audio_tokens"] = (
        audio + cached_audio if audio is not None and cached_audio is not None else audio
    )
    m["cached_input_audio_tokens"] = cached_audio
    # Image input exists only in the 2026 field set, where it is uncached like audio.
    image = to_int(r.get("input_image_tokens"))
    cached_image = to_int(r.get("input_cached_image_tokens"))
    m["input_image_tokens"] = image + (cached_image or 0) if image is not None else cached_image
    m["cached_input_image_tokens"] = cached_image
    return m


def usage_rows(endpoint: str, bucket: Bucket) -> list[UsageRow]:
    """One row per result of a usage bucket (any usage endpoint)."""
    rows = []
    for r in bucket.results:
        dims: dict[str, str | bool | None] = {k: _str(r.get(k)) for k in USAGE_DIMENSIONS if k != "batch"}
        dims["batch"] = _bool(r.get("batch"))
        extra = {k: v for k in _EXTRA_DIMENSIONS if (v := _str(r.get(k))) is not None}
        rows.append(
            UsageRow(
                endpoint=endpoint,
                bucket_start=bucket.start,
                bucket_end=bucket.end,
                dims=dims,
                extra_dims=extra,
                metrics=_usage_metrics(r),
                raw=r,
            )
        )
    return rows


def cost_rows(bucket: Bucket) -> list[CostRow]:
    """One row per result of a costs bucket; ``amount.value`` may be a number, a string or null."""
    rows = []
    for r in bucket.results:
        amount = r.get("amount")
        value = to_decimal(amount.get("value")) if isinstance(amount, Mapping) else None
        currency = _str(amount.get("currency")) if isinstance(amount, Mapping) else None
        rows.append(
            CostRow(
                bucket_start=bucket.start,
                bucket_end=bucket.end,
                dims={k: _str(r.get(k)) for k in COST_DIMENSIONS},
                amount=value,
                currency=currency.lower() if currency else None,
                quantity=to_decimal(r.get("quantity")),
                quantity_unit=_str(r.get("quantity_unit")),
                raw=r,
            )
        )
    return rows
