"""The versioned price table: bundled rows, the user's overrides on top, effective dating."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from spendscope.pricing.loading import PriceData, load_bundled, parse_overrides
from spendscope.pricing.matching import match_model, normalize_model
from spendscope.pricing.model import MONEY_FIELDS, PriceRow, Tier, money_str

__all__ = ["PriceTable", "is_known_tier", "normalize_tier", "utc_day"]

# What the response's service_tier says → the row we bill with. `fast` is reported as priority;
# `auto` is a request setting, and `scale` (Scale Tier) is prepaid capacity billed as standard tokens.
_TIER_NAMES: dict[str, Tier] = {
    "flex": "flex",
    "flex-tier": "flex",
    "priority": "priority",
    "fast": "priority",
    "default": "default",
    "standard": "default",
    "auto": "default",
    "scale": "default",
}


def normalize_tier(service_tier: str | None, batch: bool = False) -> Tier:
    """The billing tier of a call. Batch wins: batch results report ``service_tier: "default"``.

    An unknown tier string prices as standard (the engine notes it), as OpenAI reports new tier
    names before their rates are published.
    """
    if batch:
        return "batch"
    if service_tier is None:
        return "default"
    return _TIER_NAMES.get(service_tier.strip().lower(), "default")


def is_known_tier(service_tier: str) -> bool:
    return service_tier.strip().lower() in _TIER_NAMES


def utc_day(at: datetime) -> date:
    """The UTC calendar day of ``at``; a naive datetime is taken as UTC."""
    if at.tzinfo is None:
        return at.date()
    return at.astimezone(UTC).date()


class PriceTable:
    """Price rows by model and tier, each version effective from its ``valid_from`` (UTC day).

    Override rows (from the config file) form a layer above the bundled rows: for a model and tier,
    the newest override in force wins; without one, the newest bundled row in force applies.
    """

    def __init__(self, bundled: PriceData, bundled_digest: str, overrides: PriceData | None = None) -> None:
        self._bundled = bundled
        self._bundled_digest = bundled_digest
        self._overrides = overrides or PriceData(rows=(), aliases=())
        self._layers: tuple[dict[tuple[str, Tier], list[PriceRow]], ...] = (
            _index(self._overrides.rows),
            _index(bundled.rows),
        )
        self._models = frozenset(model for layer in self._layers for model, _ in layer)
        aliases: dict[str, str] = {a.alias: a.model for a in bundled.aliases}
        aliases.update({a.alias: a.model for a in self._overrides.aliases})  # the user's word wins
        self._aliases = aliases
        self._version = _digest(bundled_digest, self._overrides)

    @classmethod
    def default(cls) -> PriceTable:
        """The bundled OpenAI table, parsed and validated once per process."""
        return _default_table()

    def with_overrides(self, items: Iterable[Mapping[str, Any]]) -> PriceTable:
        """A new table with ``items`` (``[[pricing.overrides]]`` tables) layered over the bundled rows."""
        extra = parse_overrides(list(items))
        merged = PriceData(
            rows=self._overrides.rows + extra.rows,
            aliases=self._overrides.aliases + extra.aliases,
        )
        # Re-validate the union so two configs cannot silently define the same version twice.
        parse_overrides(_row_dicts(merged))
        return PriceTable(self._bundled, self._bundled_digest, merged)

    @property
    def version(self) -> str:
        """Stable hash of the bundled data and the overrides: stored with every load by the collector."""
        return self._version

    @property
    def aliases(self) -> Mapping[str, str]:
        return dict(self._aliases)

    def models(self) -> list[str]:
        return sorted(self._models)

    def resolve(self, model: str) -> str | None:
        """The table model ``model`` prices as (exact, snapshot family, alias), or None."""
        return match_model(model, self._models.__contains__, self._aliases)

    def lookup(
        self, model: str, at: datetime, service_tier: str | None = None, batch: bool = False
    ) -> PriceRow | None:
        """The row that prices ``model`` at ``at`` in the served tier, or None (unpriced)."""
        matched = self.resolve(model)
        if matched is None:
            return None
        return self.row_in_force(matched, normalize_tier(service_tier, batch), utc_day(at))

    def row_in_force(self, model: str, tier: Tier, day: date) -> PriceRow | None:
        model = normalize_model(model)
        for layer in self._layers:
            best: PriceRow | None = None
            for row in layer.get((model, tier), ()):
                if row.valid_from <= day:
                    best = row  # rows are sorted by valid_from
            if best is not None:
                return best
        return None

    def rows(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts: every version without ``at``, else the rows in force at ``at``."""
        out: list[dict[str, Any]] = []
        if at is None:
            for layer in self._layers:
                for versions in layer.values():
                    for i, row in enumerate(versions):
                        nxt = versions[i + 1].valid_from if i + 1 < len(versions) else None
                        out.append(_row_json(row, nxt))
        else:
            day = utc_day(at)
            for model, tier in sorted({key for layer in self._layers for key in layer}):
                in_force = self.row_in_force(model, tier, day)
                if in_force is not None:
                    out.append(_row_json(in_force, self._next_version(in_force)))
        tier_order = {"default": 0, "flex": 1, "priority": 2, "batch": 3}
        out.sort(key=lambda r: (r["model"], tier_order[r["tier"]], r["origin"], r["valid_from"]))
        return out

    def _next_version(self, row: PriceRow) -> date | None:
        layer = self._layers[0] if row.origin == "override" else self._layers[1]
        later = [r.valid_from for r in layer.get((row.model, row.tier), ()) if r.valid_from > row.valid_from]
        return min(later) if later else None


@cache
def _default_table() -> PriceTable:
    data, raw = load_bundled()
    return PriceTable(data, hashlib.sha256(raw).hexdigest())


def _index(rows: Iterable[PriceRow]) -> dict[tuple[str, Tier], list[PriceRow]]:
    index: dict[tuple[str, Tier], list[PriceRow]] = {}
    for row in rows:
        index.setdefault((row.model, row.tier), []).append(row)
    for versions in index.values():
        versions.sort(key=lambda r: r.valid_from)
    return index


def _row_json(row: PriceRow, valid_to: date | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": row.model,
        "tier": row.tier,
        "batch": row.tier == "batch",
        "valid_from": row.valid_from.isoformat(),
        "valid_to": valid_to.isoformat() if valid_to else None,
    }
    for name in MONEY_FIELDS:
        out[name] = money_str(row.money(name))
    out["long_context_threshold"] = row.long_context_threshold
    out["per_image"] = {f"{p.quality}:{p.size}": money_str(p.price) for p in row.per_image} or None
    out["default_image"] = row.default_image
    out["source"] = row.source
    out["checked"] = row.checked.isoformat()
    out["note"] = row.note
    out["origin"] = row.origin
    out["price_id"] = row.price_id
    return out


def _row_dicts(data: PriceData) -> list[dict[str, Any]]:
    """Override data back to config-shaped dicts (for re-validation and hashing)."""
    out: list[dict[str, Any]] = []
    for row in data.rows:
        d = {k: v for k, v in _row_json(row, None).items() if v is not None}
        for key in ("batch", "valid_to", "origin", "price_id"):
            d.pop(key, None)
        out.append(d)
    out.extend({"alias": a.alias, "model": a.model} for a in data.aliases)
    return out


def _digest(bundled_digest: str, overrides: PriceData) -> str:
    h = hashlib.sha256(bundled_digest.encode())
    h.update(json.dumps(_row_dicts(overrides), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]
