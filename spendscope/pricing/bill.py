"""Prices derived from the bill: amount ÷ quantity of the Costs API's line items.

Pure. The collector sums each line item of the Costs API per UTC day (over projects and keys) and
hands the sums here. :func:`derive` reads each line item as a model, a kind of usage and a tier, and
gives its unit price when the line item and its ``quantity_unit`` say exactly what was billed; a
line item it cannot read, or one that prices nothing spendscope records (images without their size,
tool calls, storage), is kept with the reason. :func:`bill_rows` turns the unit prices of a model into
effective-dated price rows (origin ``bill``), and :func:`compare` sets a unit price beside the
table's, for the drift finance sees.

The line items are opaque text in the API's reference; what is read is ``<model>, <kind>`` with the
kind in words (``input``, ``cached input``, ``cache write``, ``output``, ``input audio``, ``output
image``, ``characters``, ``seconds`` ...; ``_tokens`` suffixes and ``_`` for spaces accepted) and an
optional tier word (``batch``, ``flex``, ``priority``) in the kind or after another comma. Nothing
else is guessed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Literal

from spendscope.pricing.engine import KIND_RATES, kind_rate
from spendscope.pricing.matching import normalize_model
from spendscope.pricing.model import BILL_ORIGIN, PriceRow, Tier
from spendscope.pricing.table import PriceTable

__all__ = [
    "BILL_SOURCE",
    "PRICE_SCALE",
    "BillLine",
    "BillPrice",
    "Comparison",
    "LineItem",
    "bill_rows",
    "compare",
    "derive",
    "parse_line_item",
]

BILL_SOURCE = "OpenAI Costs API: amount / quantity of the day's line items"
# Unit prices keep 18 decimals (USD per million tokens, per minute, ...): far below any cent, and
# what a DECIMAL(38, 18) column stores, so a price read back is the price derived.
PRICE_SCALE = Decimal(1).scaleb(-18)
_DRIFT_SCALE = Decimal(1).scaleb(-12)
_MAX_PRICE = Decimal(10) ** 19
_MAX_NAME = 256

# The words of a kind (order free, "tokens" dropped) -> the kind (a key of KIND_RATES, or a kind
# that is recorded but prices nothing spendscope stores).
_KINDS: dict[frozenset[str], str] = {
    **dict.fromkeys(
        map(frozenset, ({"input"}, {"text", "input"}, {"uncached", "input"}, {"uncached", "text", "input"})),
        "input",
    ),
    **dict.fromkeys(
        map(frozenset, ({"cached"}, {"cached", "input"}, {"cached", "text", "input"})), "cached_input"
    ),
    **dict.fromkeys(
        map(frozenset, ({"cache", "write"}, {"cache", "write", "input"}, {"cache", "creation", "input"})),
        "cache_write",
    ),
    **dict.fromkeys(map(frozenset, ({"output"}, {"text", "output"})), "output"),
    frozenset({"audio", "input"}): "audio_input",
    frozenset({"cached", "audio", "input"}): "cached_audio_input",
    frozenset({"audio", "output"}): "audio_output",
    frozenset({"image", "input"}): "image_input",
    frozenset({"cached", "image", "input"}): "cached_image_input",
    frozenset({"image", "output"}): "image_output",
    **dict.fromkeys(map(frozenset, ({"characters"}, {"character"})), "characters"),
    **dict.fromkeys(
        map(frozenset, ({"seconds"}, {"minutes"}, {"audio", "seconds"}, {"audio", "minutes"})), "seconds"
    ),
    **dict.fromkeys(map(frozenset, ({"images"}, {"image"}, {"image", "generation"})), "images"),
}
# Kinds recognized by a pair of words anywhere in the line item: tools and storage, recorded only.
_RECORDED: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"web", "search"}), "web_search_calls"),
    (frozenset({"file", "search"}), "file_search_calls"),
    (frozenset({"code", "interpreter"}), "code_interpreter_sessions"),
    (frozenset({"storage"}), "storage"),
)
_TIERS: dict[str, Tier] = {"batch": "batch", "flex": "flex", "priority": "priority"}
# quantity_unit -> (multiplier, divisor) from amount / quantity to the row's unit, per kind of price.
_ONE = Decimal(1)
_CONVERSIONS: dict[str, tuple[str, dict[str, tuple[Decimal, Decimal]]]] = {
    "tokens": ("per_mtok", {"tokens": (Decimal(1_000_000), _ONE), "1000_tokens": (Decimal(1_000), _ONE)}),
    "characters": ("per_1m_characters", {"characters": (Decimal(1_000_000), _ONE)}),
    "seconds": (
        "per_minute",
        {
            "duration_seconds": (Decimal(60), _ONE),
            "duration_minutes": (_ONE, _ONE),
            "duration_hours": (_ONE, Decimal(60)),
        },
    ),
}
_WORD = re.compile(r"[a-z0-9]+")

Use = Literal["prices", "recorded", "ignored"]


@dataclass(frozen=True, slots=True)
class BillLine:
    """One line item of one UTC day, summed over projects and keys."""

    day: date
    line_item: str
    amount: Decimal | None  # None when a part of the sum had no amount
    quantity: Decimal | None
    quantity_unit: str | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class LineItem:
    """What a line item names: a model (None for tools and storage), a kind and a tier."""

    model: str | None
    kind: str | None  # None: not understood
    tier: Tier


@dataclass(frozen=True, slots=True)
class BillPrice:
    """A line item read: its unit price, or why there is none.

    ``use`` is ``prices`` when the unit price is one of a model's token (or character, minute) prices,
    ``recorded`` when it is a real unit price that prices nothing spendscope stores, ``ignored``
    when no exact unit price follows from the line (``reason`` says why).
    """

    line: BillLine
    item: LineItem
    unit: str | None  # per_mtok, per_1m_characters, per_minute, per_image, per_<quantity_unit>
    unit_price: Decimal | None
    use: Use
    reason: str | None = None

    @property
    def field(self) -> str | None:
        """The price row field this unit price fills (``use == "prices"`` only)."""
        if self.use != "prices" or self.item.kind is None:
            return None
        return KIND_RATES[self.item.kind][0]


@dataclass(frozen=True, slots=True)
class Comparison:
    """A bill price beside the table's row in force on its day, for the same tier and kind."""

    row: PriceRow
    table_unit_price: Decimal | None  # None: the row has no price for the kind
    drift: Decimal | None  # (bill - table) / table; None when the table price is missing or 0

    def exceeds(self, bill_price: Decimal, threshold: Decimal) -> bool:
        """Whether the two differ by more than ``threshold`` (a fraction: 0.02 is 2%)."""
        if self.table_unit_price is None:
            return False
        if self.drift is None:  # the table says 0 and the bill does not
            return bill_price > 0
        return abs(self.drift) > threshold


def parse_line_item(text: str) -> LineItem:
    """``gpt-4o-2024-08-06, cached input`` -> model, kind ``cached_input``, tier ``default``."""
    model_part, comma, rest = text.partition(",")
    words = _WORD.findall((rest if comma else text).lower().replace("_", " "))
    tiers = sorted({_TIERS[w] for w in words if w in _TIERS})
    if len(tiers) > 1:  # two tiers in one line item: not understood
        return LineItem(None, None, "default")
    tier: Tier = tiers[0] if tiers else "default"
    kept = frozenset(w for w in words if w not in _TIERS and w not in ("tokens", "token"))
    kind = _KINDS.get(kept) if comma else None
    if kind is None:
        everything = frozenset(_WORD.findall(text.lower().replace("_", " ")))
        kind = next((k for need, k in _RECORDED if need <= everything), None)
        return LineItem(None, kind, tier)
    model = normalize_model(model_part)
    if not model or len(model) > _MAX_NAME:
        return LineItem(None, None, tier)
    return LineItem(model, kind, tier)


def _ignored(line: BillLine, item: LineItem, reason: str) -> BillPrice:
    return BillPrice(line, item, None, None, "ignored", reason)


def _quotient(amount: Decimal, quantity: Decimal, mul: Decimal = _ONE, div: Decimal = _ONE) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return (amount * mul / (quantity * div)).quantize(PRICE_SCALE, rounding=ROUND_HALF_EVEN)


def _read(line: BillLine) -> BillPrice:
    item = parse_line_item(line.line_item)
    if item.kind is None:
        return _ignored(line, item, "line item not understood")
    if line.currency != "usd":
        return _ignored(line, item, f"currency {line.currency!r} is not usd")
    if line.amount is None or line.quantity is None:
        return _ignored(line, item, "no amount or no quantity")
    if line.amount < 0 or line.quantity <= 0:
        return _ignored(line, item, "a negative amount (a credit) or no positive quantity")
    unit, kind = line.quantity_unit, item.kind
    measure = kind if kind in ("characters", "seconds") else "tokens" if kind in KIND_RATES else None
    if measure is None:
        # Images (their price depends on size and quality), tool calls, storage: a real unit price
        # of something no call of spendscope's records.
        if unit is None:
            return _ignored(line, item, "no quantity_unit")
        name = "per_image" if kind == "images" and unit == "images" else f"per_{unit}"
        why = "an image's price depends on its size and quality" if kind == "images" else None
        price = _quotient(line.amount, line.quantity)
        return BillPrice(line, item, name, price, "recorded", why or "spendscope records no such usage")
    name, units = _CONVERSIONS[measure]
    conversion = units.get(unit or "")
    if conversion is None:
        return _ignored(line, item, f"quantity_unit {unit!r} does not measure {kind}")
    if item.model is None:
        return _ignored(line, item, "the line item names no model")
    price = _quotient(line.amount, line.quantity, *conversion)
    if price >= _MAX_PRICE:
        return _ignored(line, item, "unit price out of range")
    return BillPrice(line, item, name, price, "prices")


def derive(lines: Iterable[BillLine]) -> list[BillPrice]:
    """Read every line. Two line items of one day that claim the same price of a model and differ
    are both ignored: which one is right cannot be told."""
    out = [_read(line) for line in lines]
    claims: dict[tuple[date, str, Tier, str], set[Decimal]] = defaultdict(set)
    for p in out:
        if p.field is not None and p.item.model is not None and p.unit_price is not None:
            claims[(p.line.day, p.item.model, p.item.tier, p.field)].add(p.unit_price)
    for i, p in enumerate(out):
        key = (p.line.day, p.item.model or "", p.item.tier, p.field or "")
        if p.field is not None and p.item.model is not None and len(claims[key]) > 1:
            out[i] = replace(p, use="ignored", reason="another line item of the day disagrees")
    return out


def bill_rows(prices: Iterable[BillPrice]) -> tuple[PriceRow, ...]:
    """Price rows (origin ``bill``, exact) from the unit prices that price: per model and tier, a row
    from each day on which one of its prices changes. A price applies from its day until a newer
    one, and back to the days before its first: so the first row holds each price's first value."""
    by_key: dict[tuple[str, Tier], dict[date, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    for p in prices:
        if p.field is not None and p.item.model is not None and p.unit_price is not None:
            by_key[(p.item.model, p.item.tier)][p.line.day][p.field] = p.unit_price
    rows: list[PriceRow] = []
    for (model, tier), days in sorted(by_key.items()):
        current: dict[str, Decimal] = {}
        for day in sorted(days, reverse=True):  # the earliest value of each field last
            current.update(days[day])
        emitted: dict[str, Decimal] | None = None
        for day in sorted(days):
            current.update(days[day])
            if current != emitted:
                rows.append(_row(model, tier, day, current))
                emitted = dict(current)
    return tuple(rows)


def _row(model: str, tier: Tier, day: date, prices: Mapping[str, Decimal]) -> PriceRow:
    return PriceRow(
        model=model,
        tier=tier,
        valid_from=day,
        source=BILL_SOURCE,
        checked=day,
        origin=BILL_ORIGIN,
        exact=True,
        **prices,  # type: ignore[arg-type]
    )


_LONG_KINDS = frozenset({"input", "cached_input", "cache_write", "output"})


def compare(table: PriceTable, price: BillPrice) -> Comparison | None:
    """``price`` beside the row of the table (its price files and overrides) in force on its day, or
    None when the table does not know the model or has no row for the tier then.

    A model with long-context rates bills its prompts at two rates a day's line item blends: a bill
    price between the two is no drift, one outside is compared with the nearer rate.
    """
    item = price.item
    if price.field is None or item.model is None or item.kind is None or price.unit_price is None:
        return None
    matched = table.resolve(item.model)
    row = table.row_in_force(matched, item.tier, price.line.day) if matched is not None else None
    if row is None or row.origin == BILL_ORIGIN:
        return None
    rate = kind_rate(row, item.kind)
    if rate is None:
        return Comparison(row, None, None)
    if row.long_context_threshold is not None and item.kind in _LONG_KINDS:
        long_rate = kind_rate(row, item.kind, long_context=True)
        if long_rate is not None:
            low, high = sorted((rate, long_rate))
            rate = low if price.unit_price < low else high if price.unit_price > high else price.unit_price
    if rate == 0:
        return Comparison(row, rate, Decimal(0) if price.unit_price == 0 else None)
    with localcontext() as ctx:
        ctx.prec = 60
        drift = ((price.unit_price - rate) / rate).quantize(_DRIFT_SCALE, rounding=ROUND_HALF_EVEN)
    return Comparison(row, rate, drift)
