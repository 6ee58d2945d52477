"""The pricing engine: a pure function from (usage, model, time, tier, batch) to a cost breakdown.

The same function prices spans at ingest and Usage-API buckets for reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from spendscope.pricing.model import Priced, PriceRow, Usage
from spendscope.pricing.table import PriceTable, is_known_tier, normalize_tier, utc_day

__all__ = ["KIND_RATES", "TokenParts", "kind_rate", "price_usage", "split_usage"]

_MILLION = Decimal(1_000_000)
_SIXTY = Decimal(60)

# The price fields each kind of usage bills at (the keys of ``Priced.breakdown``), the first present
# wins. Cached input and cache writes without their own rate bill at the input rate: that is how
# OpenAI bills models without a caching discount. Audio and image tokens never fall back to text
# rates: that would under-bill them ~10x. ``characters`` is per million, ``seconds`` per minute.
KIND_RATES: Mapping[str, tuple[str, ...]] = {
    "input": ("input_per_mtok",),
    "cached_input": ("cached_input_per_mtok", "input_per_mtok"),
    "cache_write": ("cache_write_per_mtok", "input_per_mtok"),
    "output": ("output_per_mtok",),
    "audio_input": ("input_audio_per_mtok",),
    "cached_audio_input": ("cached_input_audio_per_mtok", "input_audio_per_mtok"),
    "audio_output": ("output_audio_per_mtok",),
    "image_input": ("input_image_per_mtok",),
    "cached_image_input": ("cached_input_image_per_mtok", "input_image_per_mtok"),
    "image_output": ("output_image_per_mtok",),
    "characters": ("per_1m_characters",),
    "seconds": ("per_minute",),
}
# Over the long-context threshold every text token of the call is billed at the long rates.
_LONG_RATES: Mapping[str, tuple[str, ...]] = {
    "input": ("long_context_input_per_mtok",),
    "cached_input": ("long_context_cached_input_per_mtok", "long_context_input_per_mtok"),
    "cache_write": ("long_context_cache_write_per_mtok", "long_context_input_per_mtok"),
    "output": ("long_context_output_per_mtok",),
}


@dataclass(frozen=True, slots=True)
class TokenParts:
    """Mutually exclusive token buckets: each token is billed exactly once."""

    text_input: int
    cached_text_input: int
    cache_write: int
    audio_input: int
    cached_audio_input: int
    image_input: int
    cached_image_input: int
    text_output: int
    reasoning: int  # a share of text_output, not an extra bucket
    audio_output: int
    image_output: int
    clamped: bool  # the usage's subsets did not fit in its totals


def split_usage(u: Usage) -> TokenParts:
    """Partition OpenAI's inclusive counts (input ⊇ cached, cache write, audio, image; output ⊇ reasoning).

    Counts that do not fit (a gateway reporting more cached than input tokens, say) are clamped to
    the total so that no bucket goes negative and nothing is counted twice.
    """
    total_in = u.input_tokens
    cached = min(u.cached_input_tokens, total_in)
    write = min(u.cache_write_input_tokens, total_in - cached)
    cached_audio = min(u.cached_input_audio_tokens, cached, u.input_audio_tokens)
    cached_image = min(u.cached_input_image_tokens, cached - cached_audio, u.input_image_tokens)
    uncached = total_in - cached - write
    audio_in = min(u.input_audio_tokens - cached_audio, uncached)
    image_in = min(u.input_image_tokens - cached_image, uncached - audio_in)
    total_out = u.output_tokens
    audio_out = min(u.output_audio_tokens, total_out)
    image_out = min(u.output_image_tokens, total_out - audio_out)
    text_out = total_out - audio_out - image_out
    reasoning = min(u.reasoning_tokens, text_out)
    clamped = (
        cached != u.cached_input_tokens
        or write != u.cache_write_input_tokens
        or cached_audio != u.cached_input_audio_tokens
        or cached_image != u.cached_input_image_tokens
        or audio_in != u.input_audio_tokens - cached_audio
        or image_in != u.input_image_tokens - cached_image
        or audio_out != u.output_audio_tokens
        or image_out != u.output_image_tokens
        or reasoning != u.reasoning_tokens
    )
    return TokenParts(
        text_input=uncached - audio_in - image_in,
        cached_text_input=cached - cached_audio - cached_image,
        cache_write=write,
        audio_input=audio_in,
        cached_audio_input=cached_audio,
        image_input=image_in,
        cached_image_input=cached_image,
        text_output=text_out,
        reasoning=reasoning,
        audio_output=audio_out,
        image_output=image_out,
        clamped=clamped,
    )


class _Unpriced(Exception):
    """A token kind was used that the row has no price for."""


def kind_rate(row: PriceRow, kind: str, long_context: bool = False) -> Decimal | None:
    """The rate ``row`` bills one unit of ``kind`` at (a :data:`KIND_RATES` key), or None.

    An exact row (derived from the bill) has no fallbacks: only its own price for the kind.
    """
    names = (_LONG_RATES if long_context else KIND_RATES).get(kind) or KIND_RATES[kind]
    for name in names[:1] if row.exact else names:
        value = row.money(name)
        if value is not None:
            return value
    return None


def _rate(row: PriceRow, kind: str, long_context: bool = False) -> Decimal:
    rate = kind_rate(row, kind, long_context)
    if rate is None:
        names = (_LONG_RATES if long_context else KIND_RATES).get(kind) or KIND_RATES[kind]
        raise _Unpriced(names[0])
    return rate


def price_usage(
    table: PriceTable,
    model: str,
    at: datetime,
    usage: Usage,
    *,
    service_tier: str | None = None,
    batch: bool = False,
) -> Priced:
    """Price one call or bucket with the row in force at ``at`` for the tier that served it.

    Returns ``status="free"`` with cost 0 for empty usage (a failed attempt), ``"unpriced"`` with
    cost None when the model is unknown or a used token kind has no price, else ``"priced"``.
    Per-image prices use ``usage.image_size``/``image_quality``; None means the model's API default.
    """
    matched = table.resolve(model)
    tier = normalize_tier(service_tier, batch)
    notes: list[str] = []
    if service_tier is not None and not batch and not is_known_tier(service_tier):
        notes.append(f"unknown service tier {service_tier!r} priced as default")
    row = table.row_in_force(matched, tier, utc_day(at)) if matched is not None else None
    if usage.is_empty():
        return Priced(
            cost=Decimal(0),
            status="free",
            price_id=row.price_id if row else None,
            price_origin=row.price_origin if row else None,
            matched_model=matched,
            tier=tier,
            breakdown={},
            reasoning_cost=Decimal(0),
        )
    if matched is None:
        return Priced(cost=None, status="unpriced", tier=tier, reason=f"no price for model {model!r}")
    if row is None:
        return Priced(
            cost=None,
            status="unpriced",
            matched_model=matched,
            tier=tier,
            reason=f"no {tier} price for {matched!r} in force on {utc_day(at).isoformat()}",
        )
    parts = split_usage(usage)
    if parts.clamped:
        notes.append("usage subsets exceeded their totals and were clamped")
    long_context = row.long_context_threshold is not None and usage.input_tokens > row.long_context_threshold
    try:
        with localcontext() as ctx:
            ctx.prec = 50
            image = (usage.image_quality, usage.image_size)
            breakdown, reasoning_cost = _breakdown(row, parts, usage, long_context, image)
            cost = sum(breakdown.values(), Decimal(0))
    except _Unpriced as missing:
        return Priced(
            cost=None,
            status="unpriced",
            price_id=row.price_id,
            price_origin=row.price_origin,
            matched_model=matched,
            tier=tier,
            long_context=long_context,
            reason=f"{row.price_id} has no {missing.args[0]} but the usage needs it",
        )
    return Priced(
        cost=cost,
        status="priced",
        price_id=row.price_id,
        price_origin=row.price_origin,
        matched_model=matched,
        tier=tier,
        long_context=long_context,
        breakdown=breakdown,
        reasoning_cost=reasoning_cost,
        reason="; ".join(notes) or None,
    )


def _breakdown(
    row: PriceRow, p: TokenParts, usage: Usage, long_context: bool, image: tuple[str | None, str | None]
) -> tuple[dict[str, Decimal], Decimal]:
    # Over the long-context threshold every text token of the call is billed at the long rates (a
    # cliff, as OpenAI bills it); audio and image tokens keep their own rates.
    token_kinds: list[tuple[str, int]] = [
        ("input", p.text_input),
        ("cached_input", p.cached_text_input),
        ("cache_write", p.cache_write),
        ("output", p.text_output),
        ("audio_input", p.audio_input),
        ("cached_audio_input", p.cached_audio_input),
        ("audio_output", p.audio_output),
        ("image_input", p.image_input),
        ("cached_image_input", p.cached_image_input),
        ("image_output", p.image_output),
    ]
    out: dict[str, Decimal] = {}
    reasoning_cost = Decimal(0)
    for key, count in token_kinds:
        if count:
            rate = _rate(row, key, long_context)
            out[key] = count * rate / _MILLION
            if key == "output":
                reasoning_cost = p.reasoning * rate / _MILLION
    if usage.images:
        out["images"] = usage.images * _image_price(row, *image)
    if usage.characters:
        out["characters"] = usage.characters * _rate(row, "characters") / _MILLION
    if usage.seconds:
        seconds = usage.seconds if isinstance(usage.seconds, Decimal) else Decimal(str(usage.seconds))
        out["seconds"] = seconds * _rate(row, "seconds") / _SIXTY
    return out, reasoning_cost


def _image_price(row: PriceRow, quality: str | None, size: str | None) -> Decimal:
    if not row.per_image or row.default_image is None:
        raise _Unpriced("per_image")
    default_quality, _, default_size = row.default_image.partition(":")
    quality = (quality or default_quality).lower()
    size = (size or default_size).lower()
    for price in row.per_image:
        if price.quality == quality and price.size == size:
            return price.price
    raise _Unpriced(f"per_image[{quality}:{size}]")
