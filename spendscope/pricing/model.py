"""The value types of pricing: what was used, one price row, and what a call cost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

__all__ = [
    "BILL_ORIGIN",
    "MONEY_FIELDS",
    "TIERS",
    "ImagePrice",
    "PriceRow",
    "Priced",
    "PricingStatus",
    "Tier",
    "Usage",
    "money_str",
    "origin_name",
]

Tier = Literal["default", "flex", "priority", "batch"]
TIERS: tuple[Tier, ...] = ("default", "flex", "priority", "batch")
PricingStatus = Literal["priced", "unpriced", "free"]

# Every per-million-token price a row may carry, in the order rows are listed.
MONEY_FIELDS: tuple[str, ...] = (
    "input_per_mtok",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "output_per_mtok",
    "input_audio_per_mtok",
    "cached_input_audio_per_mtok",
    "output_audio_per_mtok",
    "input_image_per_mtok",
    "cached_input_image_per_mtok",
    "output_image_per_mtok",
    "long_context_input_per_mtok",
    "long_context_cached_input_per_mtok",
    "long_context_cache_write_per_mtok",
    "long_context_output_per_mtok",
    "per_1m_characters",
    "per_minute",
)


# The origin of rows derived from the bill (the Costs API's line items).
BILL_ORIGIN = "bill"


def origin_name(origin: str) -> str:
    """The price origin a call records: ``reviewed`` (the bundled table), ``override``,
    ``extra:<file>`` or ``bill``. Rows keep ``openai`` in their ``price_id``, which stays stable."""
    return "reviewed" if origin == "openai" else origin


# Usage fields that describe rather than count.
_LABELS = frozenset({"image_size", "image_quality"})


def money_str(value: Decimal | None) -> str | None:
    """A plain decimal string (no exponent, no trailing zeros), or None."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True, slots=True)
class Usage:
    """What one call (or one Usage-API bucket) consumed, in OpenAI's inclusive convention.

    ``input_tokens`` includes cached, cache-write, audio and image input tokens; ``output_tokens``
    includes reasoning, audio and image output tokens. The audio/image/cached-audio/cached-image
    counts are subsets of those totals, never added on top.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    images: int = 0
    characters: int = 0
    seconds: int | float | Decimal = 0
    # Extensions (keyword only in practice): finer partitions some models bill separately.
    cached_input_audio_tokens: int = 0
    input_image_tokens: int = 0
    cached_input_image_tokens: int = 0
    output_image_tokens: int = 0
    # Per-image prices depend on size and quality; None means the model's API default.
    image_size: str | None = None
    image_quality: str | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _LABELS:
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"Usage.{f.name} must be a string or None")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                raise TypeError(f"Usage.{f.name} must be a number, got {type(value).__name__}")
            if value < 0:
                raise ValueError(f"Usage.{f.name} must not be negative, got {value}")

    def is_empty(self) -> bool:
        """True when nothing billable was used (a failed attempt, for instance)."""
        return not any(
            getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("image_size", "image_quality")
        )


@dataclass(frozen=True, slots=True)
class ImagePrice:
    """Price of one generated image of a given quality and size."""

    quality: str
    size: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One version of one model's prices for one tier: in force from ``valid_from`` until the next."""

    model: str
    tier: Tier
    valid_from: date
    source: str
    checked: date
    origin: str = "openai"  # "openai" (bundled), "override", "extra:<file>" or "bill"
    note: str | None = None
    input_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    input_audio_per_mtok: Decimal | None = None
    cached_input_audio_per_mtok: Decimal | None = None
    output_audio_per_mtok: Decimal | None = None
    input_image_per_mtok: Decimal | None = None
    cached_input_image_per_mtok: Decimal | None = None
    output_image_per_mtok: Decimal | None = None
    long_context_threshold: int | None = None
    long_context_input_per_mtok: Decimal | None = None
    long_context_cached_input_per_mtok: Decimal | None = None
    long_context_cache_write_per_mtok: Decimal | None = None
    long_context_output_per_mtok: Decimal | None = None
    per_1m_characters: Decimal | None = None
    per_minute: Decimal | None = None
    per_image: tuple[ImagePrice, ...] = ()
    default_image: str | None = None  # "quality:size" used when the call did not say
    # Only the prices given apply: a used token kind without its own price leaves the call unpriced
    # (no fallback of cached input or cache writes to the input rate). Rows derived from the bill
    # are exact: a kind the bill did not show is unknown, not "billed like input".
    exact: bool = False

    @property
    def price_id(self) -> str:
        """Stable id kept on every priced call so history can be reproduced."""
        return f"{self.origin}:{self.model}:{self.valid_from.isoformat()}:{self.tier}"

    @property
    def price_origin(self) -> str:
        """Where the row came from, as calls record it (see :func:`origin_name`)."""
        return origin_name(self.origin)

    def money(self, name: str) -> Decimal | None:
        value = getattr(self, name)
        assert value is None or isinstance(value, Decimal)
        return value


@dataclass(frozen=True, slots=True)
class Priced:
    """The cost of one call; ``cost`` is None when it could not be priced (never a silent 0)."""

    cost: Decimal | None
    status: PricingStatus
    price_id: str | None = None
    price_origin: str | None = None  # reviewed, override, extra:<file> or bill
    matched_model: str | None = None
    tier: Tier | None = None
    long_context: bool = False
    breakdown: dict[str, Decimal] = field(default_factory=dict)
    # The part of ``breakdown["output"]`` that paid for reasoning: informational, already in the total.
    reasoning_cost: Decimal | None = None
    reason: str | None = None  # why unpriced, or what was adjusted (e.g. clamped counts)
