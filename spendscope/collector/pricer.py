"""Pricing at ingest: :func:`spendscope.pricing.price_usage` without calling it for every span.

Within one (model, tier, batch, UTC day) the engine's cost is linear in the token counts as long
as the usage is "plain": subsets fit in their totals, no audio, below the long-context threshold.
For each such key the engine is asked for the per-token rate of each kind (one-token probes), the
linear formula is checked against the engine on a sample usage, and plain usages are then priced
by that formula in integer picodollars. Anything else, or a key whose check failed, goes to the
engine itself, so the result is always the engine's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from operator import itemgetter
from typing import Any

from spendscope.collector.schema import ROW_INDEX, TOKEN_FIELDS
from spendscope.pricing import PriceTable, Usage, normalize_tier, price_usage

__all__ = ["PICO", "Pricer", "PricingResult", "pico_to_decimal"]

PICO = Decimal(10) ** 12  # cost is stored with 12 decimals: DECIMAL(38, 12)
_NS_PER_DAY = 86_400 * 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (price_id, pricing_status, cost in picodollars or None)
PricingResult = tuple[str | None, str, int | None]


def _to_pico(cost: Decimal) -> int:
    return int((cost * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))


def pico_to_decimal(pico: int) -> Decimal:
    return Decimal(pico).scaleb(-12)


@dataclass(frozen=True, slots=True)
class _Linear:
    price_id: str | None
    threshold: int | None
    # picodollars per token for uncached input, cached, cache write, output, reasoning share;
    # None where the kind has no price (any use of it makes the call unpriced).
    rates: tuple[int | None, int | None, int | None, int | None, int | None]


def _day_start(day: int) -> datetime:
    return _EPOCH + timedelta(days=day)


class Pricer:
    """Prices rows for one :class:`PriceTable`; thread-safe (the cache only ever gains entries)."""

    def __init__(self, table: PriceTable) -> None:
        self.table = table
        self._cache: dict[tuple[str, str | None, bool, int], _Linear | None] = {}

    @property
    def version(self) -> str:
        return str(self.table.version)

    def _engine(
        self, model: str, tier: str | None, batch: bool, at: datetime, usage: Usage
    ) -> tuple[str | None, str, Decimal | None]:
        p = price_usage(self.table, model, at, usage, service_tier=tier, batch=batch)
        return p.price_id, str(p.status), p.cost

    def _linear(self, model: str, tier: str | None, batch: bool, day: int) -> _Linear | None:
        key = (model, tier, batch, day)
        try:
            return self._cache[key]
        except KeyError:
            pass
        entry = self._probe(model, tier, batch, _day_start(day))
        self._cache[key] = entry
        return entry

    def _probe(self, model: str, tier: str | None, batch: bool, at: datetime) -> _Linear | None:
        matched = self.table.resolve(model)
        if matched is None:
            return None
        row = self.table.row_in_force(matched, normalize_tier(tier, batch), at.date())
        if row is None:
            return None

        def unit(**kw: int) -> Decimal | None:
            _, status, cost = self._engine(model, tier, batch, at, Usage(**kw))  # type: ignore[arg-type]
            return cost if status == "priced" else None

        r_in = unit(input_tokens=1)
        r_cached = unit(input_tokens=1, cached_input_tokens=1)
        r_write = unit(input_tokens=1, cache_write_input_tokens=1)
        r_out = unit(output_tokens=1)
        with_reasoning = unit(output_tokens=1, reasoning_tokens=1)
        r_reason = None if with_reasoning is None or r_out is None else with_reasoning - r_out
        picos: list[int | None] = []
        for r in (r_in, r_cached, r_write, r_out, r_reason):
            if r is None:
                picos.append(None)
                continue
            scaled = r * PICO
            if scaled != scaled.to_integral_value():
                return _Linear(row.price_id, -1, (None,) * 5)
            picos.append(int(scaled))
        entry = _Linear(row.price_id, row.long_context_threshold, tuple(picos))  # type: ignore[arg-type]
        # Check the formula against the engine once; on any disagreement use the engine always.
        sample = (min(1234, row.long_context_threshold or 1234), 200, 30, 567, 100)
        fast = self._fast(entry, sample)
        _, status, cost = self._engine(
            model, tier, batch, at, Usage(sample[0], sample[1], sample[2], sample[3], sample[4])
        )
        if fast is not None and (status != "priced" or cost is None or fast != _to_pico(cost)):
            return _Linear(row.price_id, -1, (None,) * 5)
        return entry

    @staticmethod
    def _fast(e: _Linear, usage: tuple[int, int, int, int, int]) -> int | None:
        """Picodollars for a plain usage; None when a used kind has no rate (unpriced)."""
        inp, cached, write, out, reasoning = usage
        r_in, r_cached, r_write, r_out, r_reason = e.rates
        uncached = inp - cached - write
        total = 0
        # Unrolled rather than a loop over pairs: this runs once per priced call.
        if uncached:
            if r_in is None:
                return None
            total += uncached * r_in
        if cached:
            if r_cached is None:
                return None
            total += cached * r_cached
        if write:
            if r_write is None:
                return None
            total += write * r_write
        if out:
            if r_out is None:
                return None
            total += out * r_out
        if reasoning:
            if r_reason is None:
                return None
            total += reasoning * r_reason
        return total

    def price(
        self,
        model: str,
        tier: str | None,
        batch: bool,
        *,
        start_ns: int,
        is_error: bool,
        tokens: Sequence[int | None],
    ) -> PricingResult:
        """Price one call from its seven token counts (``TOKEN_FIELDS`` order, None when absent)."""
        inp, cached, write, out, reasoning, in_audio, out_audio = tokens
        if tokens.count(None) == 7:
            # No usage at all: a failed attempt costs nothing; a success is unknown, not free.
            return (None, "no_usage", 0) if is_error else (None, "missing_usage", None)
        inp, cached, write, out, reasoning = inp or 0, cached or 0, write or 0, out or 0, reasoning or 0
        day = start_ns // _NS_PER_DAY
        e = self._linear(model, tier, batch, day)
        if e is None:
            if not any(tokens):  # the engine's "empty usage": nothing billable, whatever the model
                return None, "free", 0
            return None, "unpriced", None
        if (
            not in_audio
            and not out_audio
            and e.threshold != -1
            and cached + write <= inp
            and reasoning <= out
            and (e.threshold is None or inp <= e.threshold)
        ):
            if not (inp or out):
                return e.price_id, "free", 0
            fast = self._fast(e, (inp, cached, write, out, reasoning))
            # None: a used kind has no price, which the engine also answers with "unpriced".
            return (e.price_id, "priced", fast) if fast is not None else (e.price_id, "unpriced", None)
        at = _EPOCH + timedelta(microseconds=start_ns // 1000)
        usage = Usage(inp, cached, write, out, reasoning, in_audio or 0, out_audio or 0)
        price_id, status, cost = self._engine(model, tier, batch, at, usage)
        return price_id, status, None if cost is None else _to_pico(cost)

    def price_rows(self, rows: Sequence[tuple[Any, ...]]) -> list[PricingResult]:
        """Price normalized rows (:data:`~spendscope.collector.schema.ROW_FIELDS` order)."""
        price = self.price
        return [price(r[_M], r[_T], r[_B], start_ns=r[_S], is_error=r[_ERR], tokens=_tokens(r)) for r in rows]


_M, _T, _B = ROW_INDEX["model"], ROW_INDEX["service_tier"], ROW_INDEX["batch"]
_S, _ERR = ROW_INDEX["start_ns"], ROW_INDEX["is_error"]
# The seven counts Pricer.price takes, in its order.
_tokens = itemgetter(*(ROW_INDEX[t] for t in TOKEN_FIELDS))
assert len(TOKEN_FIELDS) == 7
