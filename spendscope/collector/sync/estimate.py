"""Price a usage bucket with the same engine that prices spans, so uninstrumented traffic has an estimate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from spendscope.collector.sync.parse import UsageRow
from spendscope.pricing import PriceTable, Usage, price_usage

__all__ = ["Estimate", "estimate_row"]

# (cost or None, price id, status): status is priced | unpriced | free | not_priced.
Estimate = tuple[Decimal | None, str | None, str]

# Tools and storage are billed per session, call or GB-day: the token price table has no rows for them,
# and the Costs API is their only truth.
_NOT_PRICED = frozenset(
    {"vector_stores", "code_interpreter_sessions", "file_search_calls", "web_search_calls"}
)


def _n(row: UsageRow, name: str) -> int:
    value = row.metrics.get(name)
    return value if value is not None and value > 0 else 0


def _usage(row: UsageRow) -> Usage:
    if row.endpoint == "images":
        return Usage(images=_n(row, "images"), image_size=row.extra_dims.get("size"))
    if row.endpoint == "audio_speeches":
        return Usage(characters=_n(row, "characters"))
    if row.endpoint == "audio_transcriptions":
        return Usage(seconds=_n(row, "seconds"))
    input_tokens = _n(row, "input_tokens")
    return Usage(
        input_tokens=input_tokens,
        cached_input_tokens=_n(row, "cached_input_tokens"),
        cache_write_input_tokens=_n(row, "cache_write_input_tokens"),
        output_tokens=_n(row, "output_tokens"),
        input_audio_tokens=_n(row, "input_audio_tokens"),
        cached_input_audio_tokens=_n(row, "cached_input_audio_tokens"),
        output_audio_tokens=_n(row, "output_audio_tokens"),
        input_image_tokens=_n(row, "input_image_tokens"),
        cached_input_image_tokens=_n(row, "cached_input_image_tokens"),
        output_image_tokens=_n(row, "output_image_tokens"),
    )


def estimate_row(row: UsageRow, table: PriceTable) -> Estimate:
    """What our price table says the bucket row cost, at the bucket's start time."""
    if row.endpoint in _NOT_PRICED:
        return None, None, "not_priced"
    model = row.dims.get("model")
    if not isinstance(model, str):
        # Not grouped by model: nothing to price against (the rows are still counted in tokens).
        return None, None, "unpriced"
    tier = row.dims.get("service_tier")
    priced = price_usage(
        table,
        model=model,
        at=datetime.fromtimestamp(row.bucket_start, UTC),
        usage=_usage(row),
        service_tier=tier if isinstance(tier, str) else None,
        batch=row.dims.get("batch") is True,
    )
    return priced.cost, priced.price_id, priced.status
