"""Pure pieces of the fake Usage and Costs API: query parsing, bucketing, aggregation, cost lines.

Everything here is a function of its arguments (no clock, no globals) so the HTTP shell in
``usage_api`` stays thin and these rules can be tested on their own.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from spendscope.fake_openai.ledger import LedgerRow

__all__ = [
    "COSTS_GROUP_BY",
    "ENDPOINTS",
    "LIMITS",
    "WIDTH_SECONDS",
    "EndpointSpec",
    "FakePrice",
    "bucket_edges",
    "cost_lines",
    "costs_results",
    "parse_query",
    "usage_results",
]

WIDTH_SECONDS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}
# (default, maximum) number of buckets per page, by bucket width (the API's own limits).
LIMITS: dict[str, tuple[int, int]] = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}

_PEOPLE = ("project_id", "user_id", "api_key_id")


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One ``/organization/usage/<name>`` endpoint: which ledger rows it counts and how."""

    name: str
    object: str
    ledger_endpoints: tuple[str, ...]  # ledger ``endpoint`` values (a trailing "." is a prefix match)
    group_by: tuple[str, ...]
    metrics: Callable[[LedgerRow, str], dict[str, int]]

    def counts(self, row: LedgerRow) -> bool:
        return any(
            row.endpoint.startswith(e) if e.endswith(".") else row.endpoint == e
            for e in self.ledger_endpoints
        )


def _completion_metrics(row: LedgerRow, profile: str) -> dict[str, int]:
    m = {
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "num_model_requests": row.num_model_requests,
        "input_cached_tokens": row.cached_tokens,
        "input_audio_tokens": row.input_audio_tokens,
        "output_audio_tokens": row.output_audio_tokens,
    }
    if profile != "v2025":
        # Fields added in 2026; here input_audio_tokens means *uncached* audio (the fake never caches audio).
        # As in the 2026 spec: input = uncached + cached + cache write, and the per-modality
        # input fields are uncached.
        uncached = row.input_tokens - row.cached_tokens - row.cache_write_tokens
        m |= {
            "input_cache_write_tokens": row.cache_write_tokens,
            "input_uncached_tokens": uncached,
            "input_text_tokens": uncached - row.input_audio_tokens,
            "output_text_tokens": row.output_tokens - row.output_audio_tokens,
            "input_cached_text_tokens": row.cached_tokens,
            "input_cached_audio_tokens": 0,
            "input_image_tokens": 0,
            "input_cached_image_tokens": 0,
            "output_image_tokens": 0,
        }
    return m


def _tokens_metrics(row: LedgerRow, profile: str) -> dict[str, int]:
    return {"input_tokens": row.input_tokens, "num_model_requests": row.num_model_requests}


def _extra_int(row: LedgerRow, key: str, default: int = 0) -> int:
    v = row.extra.get(key, default)
    return v if isinstance(v, int) else default


ENDPOINTS: dict[str, EndpointSpec] = {
    s.name: s
    for s in (
        EndpointSpec(
            "completions",
            "organization.usage.completions.result",
            ("chat.completions", "responses", "completions"),
            (*_PEOPLE, "model", "batch", "service_tier"),
            _completion_metrics,
        ),
        EndpointSpec(
            "embeddings",
            "organization.usage.embeddings.result",
            ("embeddings",),
            (*_PEOPLE, "model"),
            _tokens_metrics,
        ),
        EndpointSpec(
            "moderations",
            "organization.usage.moderations.result",
            ("moderations",),
            (*_PEOPLE, "model"),
            _tokens_metrics,
        ),
        EndpointSpec(
            "images",
            "organization.usage.images.result",
            ("images.",),
            (*_PEOPLE, "model", "size", "source"),
            lambda r, p: {"images": r.images, "num_model_requests": r.num_model_requests},
        ),
        EndpointSpec(
            "audio_speeches",
            "organization.usage.audio_speeches.result",
            ("audio.speech",),
            (*_PEOPLE, "model"),
            lambda r, p: {"characters": r.characters, "num_model_requests": r.num_model_requests},
        ),
        EndpointSpec(
            "audio_transcriptions",
            "organization.usage.audio_transcriptions.result",
            ("audio.transcriptions", "audio.translations"),
            (*_PEOPLE, "model"),
            lambda r, p: {"seconds": r.seconds, "num_model_requests": r.num_model_requests},
        ),
        EndpointSpec(
            "vector_stores",
            "organization.usage.vector_stores.result",
            ("vector_stores",),
            ("project_id",),
            lambda r, p: {"usage_bytes": _extra_int(r, "usage_bytes")},
        ),
        EndpointSpec(
            "code_interpreter_sessions",
            "organization.usage.code_interpreter_sessions.result",
            ("code_interpreter_sessions",),
            ("project_id",),
            lambda r, p: {"num_sessions": _extra_int(r, "num_sessions", 1)},
        ),
        EndpointSpec(
            "file_search_calls",
            "organization.usage.file_searches.result",
            ("file_search_calls",),
            (*_PEOPLE, "vector_store_id"),
            lambda r, p: {"num_requests": _extra_int(r, "num_requests", 1)},
        ),
        EndpointSpec(
            "web_search_calls",
            "organization.usage.web_searches.result",
            ("web_search_calls",),
            (*_PEOPLE, "model", "context_level"),
            lambda r, p: {
                "num_model_requests": r.num_model_requests,
                "num_requests": _extra_int(r, "num_requests", 1),
            },
        ),
    )
}

COSTS_GROUP_BY: dict[str, tuple[str, ...]] = {
    "v2025": ("project_id", "line_item"),
    "v2026": ("project_id", "line_item", "api_key_id"),
}


def parse_query(query: str) -> dict[str, list[str]]:
    """Parse a query string accepting ``k[]=v``, repeated ``k=v`` and comma lists alike."""
    out: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        name = key.removesuffix("[]")
        parts = [p for p in value.split(",") if p] if "," in value else [value]
        out.setdefault(name, []).extend(parts)
    return out


def bucket_edges(start: int, end: int, width: int) -> list[tuple[int, int]]:
    """Buckets covering ``[start, end)``: the first starts at ``start`` (maybe unaligned), later ones
    on UTC width boundaries, and the last ends at ``end`` (the API cuts it at "now")."""
    edges: list[tuple[int, int]] = []
    s = start
    while s < end:
        e = min((s // width + 1) * width, end)
        edges.append((s, e))
        s = e
    return edges


def _dimension(row: LedgerRow, key: str) -> Any:
    if key == "batch":
        return row.batch
    if hasattr(row, key):
        return getattr(row, key)
    return row.extra.get(key)


def _matches(row: LedgerRow, filters: Mapping[str, Sequence[str]], batch: bool | None) -> bool:
    for key, values in filters.items():
        if values and _dimension(row, key) not in values:
            return False
    return batch is None or row.batch == batch


def _group(
    rows: Iterable[LedgerRow], edges: Sequence[tuple[int, int]], key: Callable[[LedgerRow], tuple[Any, ...]]
) -> list[dict[tuple[Any, ...], list[LedgerRow]]]:
    groups: list[dict[tuple[Any, ...], list[LedgerRow]]] = [{} for _ in edges]
    if not edges:
        return groups
    starts = [s for s, _ in edges]
    hi = edges[-1][1]
    for row in rows:
        i = bisect_right(starts, row.ts) - 1
        if i >= 0 and row.ts < hi:
            groups[i].setdefault(key(row), []).append(row)
    return groups


def usage_results(
    spec: EndpointSpec,
    rows: Iterable[LedgerRow],
    edges: Sequence[tuple[int, int]],
    *,
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[str]],
    batch: bool | None,
    profile: str,
) -> list[list[dict[str, Any]]]:
    """One list of result objects per bucket; dimensions not grouped by are ``null``."""
    selected = [r for r in rows if spec.counts(r) and _matches(r, filters, batch)]
    grouped = _group(selected, edges, lambda r: tuple(_dimension(r, k) for k in group_by))
    out: list[list[dict[str, Any]]] = []
    for bucket in grouped:
        results = []
        for gkey in sorted(bucket, key=repr):
            metrics: dict[str, int] = {}
            for r in bucket[gkey]:
                for name, value in spec.metrics(r, profile).items():
                    metrics[name] = metrics.get(name, 0) + value
            dims: dict[str, Any] = {k: None for k in spec.group_by}
            if profile == "v2025":
                dims.pop("service_tier", None)
            dims.update(zip(group_by, gkey, strict=True))
            results.append({"object": spec.object, **metrics, **dims})
        out.append(results)
    return out


# USD per million tokens (or per unit for the non-token keys): input, cached_input, cache_write, output,
# input_audio, output_audio, image, character (per million), second.
FakePrice = Mapping[str, Decimal]
_MTOK = Decimal(1_000_000)


def cost_lines(row: LedgerRow, prices: Mapping[str, FakePrice]) -> list[tuple[str, Decimal, Decimal, str]]:
    """The bill for one ledger row: ``(line_item, amount_usd, quantity, quantity_unit)`` entries.

    Line items read ``<model>, <kind>``; batch requests pay half, as OpenAI bills the Batch API, on
    their own line items (``<model>, <kind>, batch``). A model the price dict does not know falls
    back to its ``"*"`` entry, and to nothing if there is none (the fake then bills it zero). Tools
    and storage are seeded by tests as ``extra`` (``cost_usd``, ``line_item``, and optionally
    ``quantity`` and ``quantity_unit``).
    """
    price = prices.get(row.model) or prices.get("*")
    if price is None:
        return []
    factor = Decimal("0.5") if row.batch else Decimal(1)
    audio_in = row.input_audio_tokens
    uncached_text = row.input_tokens - row.cached_tokens - row.cache_write_tokens - audio_in
    parts: list[tuple[str, int, str, str]] = [
        ("input", uncached_text, "input", "tokens"),
        ("cached input", row.cached_tokens, "cached_input", "tokens"),
        ("cache write", row.cache_write_tokens, "cache_write", "tokens"),
        ("output", row.output_tokens - row.output_audio_tokens, "output", "tokens"),
        ("input audio", audio_in, "input_audio", "tokens"),
        ("output audio", row.output_audio_tokens, "output_audio", "tokens"),
        ("images", row.images, "image", "images"),
        ("characters", row.characters, "character", "characters"),
        ("seconds", row.seconds, "second", "duration_seconds"),
    ]
    lines = []
    for label, qty, key, unit in parts:
        if qty <= 0:
            continue
        rate = price.get(key, price.get("input") if key in ("cached_input", "cache_write") else None)
        if rate is None:
            continue
        per = _MTOK if unit in ("tokens", "characters") else Decimal(1)
        item = f"{row.model}, {label}, batch" if row.batch else f"{row.model}, {label}"
        lines.append((item, rate * qty / per * factor, Decimal(qty), unit))
    extra = row.extra.get("cost_usd")  # tools and storage: tests seed their bill directly
    if isinstance(extra, str):
        item = str(row.extra.get("line_item", row.endpoint))
        qty_text = row.extra.get("quantity", "1")
        unit = str(row.extra.get("quantity_unit", "units"))
        lines.append((item, Decimal(extra), Decimal(str(qty_text)), unit))
    return lines


def costs_results(
    rows: Iterable[LedgerRow],
    edges: Sequence[tuple[int, int]],
    *,
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[str]],
    prices: Mapping[str, FakePrice],
    profile: str,
) -> list[list[dict[str, Any]]]:
    """Costs result objects per bucket; ``amount.value`` stays a Decimal for the encoder to write."""
    lines = [
        (r, line)
        for r in rows
        if _matches(r, {k: v for k, v in filters.items() if k != "line_item"}, None)
        for line in cost_lines(r, prices)
        if not filters.get("line_item") or line[0] in filters["line_item"]
    ]
    accs: list[dict[tuple[Any, ...], list[Any]]] = [{} for _ in edges]
    starts = [s for s, _ in edges]
    hi = edges[-1][1] if edges else 0
    for row, (item, amount, qty, unit) in lines:
        i = bisect_right(starts, row.ts) - 1
        if i < 0 or row.ts >= hi:
            continue
        dims = {"project_id": row.project_id, "api_key_id": row.api_key_id, "line_item": item}
        slot = accs[i].setdefault(tuple(dims[k] for k in group_by), [Decimal(0), Decimal(0), unit])
        slot[0] += amount
        slot[1] += qty
        if slot[2] != unit:
            slot[2] = None
    out: list[list[dict[str, Any]]] = []
    for acc in accs:
        results = []
        for gkey in sorted(acc, key=repr):
            amount, qty, unit = acc[gkey]
            result: dict[str, Any] = {
                "object": "organization.costs.result",
                "amount": {"value": amount, "currency": "usd"},
                "line_item": None,
                "project_id": None,
            }
            if profile != "v2025":
                result |= {"api_key_id": None, "quantity": None, "quantity_unit": None}
            result.update(zip(group_by, gkey, strict=True))
            if "line_item" in group_by and profile != "v2025":
                result["quantity"] = qty
                result["quantity_unit"] = unit
            results.append(result)
        out.append(results)
    return out
