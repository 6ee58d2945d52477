"""The versioned price table: bundled rows, overrides on top, extra tables below, effective dating."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from spendscope.pricing.loading import PriceData, PriceDataError, load_bundled, parse_data, parse_overrides
from spendscope.pricing.matching import match_model, normalize_model
from spendscope.pricing.model import MONEY_FIELDS, PriceRow, Tier, money_str

__all__ = ["ExtraTable", "PriceTable", "Shadowed", "is_known_tier", "normalize_tier", "utc_day"]

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


@dataclass(frozen=True, slots=True)
class ExtraTable:
    """An extra price file the operator added (``[pricing] extra_tables``), parsed and validated."""

    label: str  # the path as the config names it; rows carry origin ``extra:<label>``
    data: PriceData
    digest: str


@dataclass(frozen=True, slots=True)
class Shadowed:
    """A row of a lower origin that a higher origin's model hides; reported, never applied."""

    row: PriceRow
    winner: PriceRow | None  # the higher origin's row in force at ``row.valid_from``, same tier
    fields: tuple[str, ...]  # the prices that differ (empty: the two agree)

    def describe(self) -> str:
        """One line for the collector's start log and ``pricing list``."""
        winner = (
            self.winner.price_id if self.winner else f"an earlier origin's {self.row.model!r} (no row then)"
        )
        diffs = ", ".join(
            f"{f} {_price_text(self.winner, f)} (extra: {_price_text(self.row, f)})" for f in self.fields
        )
        return f"{self.row.price_id} is not applied: {winner} wins; they disagree on {diffs}"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.row.model,
            "tier": self.row.tier,
            "valid_from": self.row.valid_from.isoformat(),
            "origin": self.row.origin,
            "price_id": self.row.price_id,
            "shadowed_by": self.winner.price_id if self.winner else None,
            "fields": {
                f: {"winner": _price_text(self.winner, f), "shadowed": _price_text(self.row, f)}
                for f in self.fields
            },
        }


class _Origin:
    """The rows and aliases of one origin group, layered: within it the first layer in force wins."""

    def __init__(self, layers: tuple[PriceData, ...]) -> None:
        self.layers = tuple(_index(data.rows) for data in layers)
        self.models = frozenset(model for layer in self.layers for model, _ in layer)
        aliases: dict[str, str] = {}
        for data in reversed(layers):  # the first layer's word wins
            aliases.update({a.alias: a.model for a in data.aliases})
        self.aliases = aliases

    def row_in_force(self, model: str, tier: Tier, day: date) -> PriceRow | None:
        for layer in self.layers:
            best: PriceRow | None = None
            for row in layer.get((model, tier), ()):
                if row.valid_from <= day:
                    best = row  # rows are sorted by valid_from
            if best is not None:
                return best
        return None

    def layer_of(self, row: PriceRow) -> dict[tuple[str, Tier], list[PriceRow]]:
        for layer in self.layers:
            if row in layer.get((row.model, row.tier), ()):
                return layer
        raise KeyError(row.price_id)


class PriceTable:
    """Price rows by model and tier, each version effective from its ``valid_from`` (UTC day).

    Rows come from origins in a fixed order (ARCHITECTURE.md section 9): first the reviewed table
    with the user's overrides (an override in force wins over the bundled row of its model and
    tier), then each extra table in the order the config lists them. A model belongs to the first
    origin that knows it: a name the reviewed table resolves is priced by the reviewed table or
    not at all, so a row of a later origin never replaces a reviewed row; it is kept as
    :class:`Shadowed` and reported. A later origin (prices derived from the bill) is one more group.
    """

    def __init__(
        self,
        bundled: PriceData,
        bundled_digest: str,
        overrides: PriceData | None = None,
        extras: tuple[ExtraTable, ...] = (),
    ) -> None:
        self._bundled = bundled
        self._bundled_digest = bundled_digest
        self._overrides = overrides or PriceData(rows=(), aliases=())
        self._extras = extras
        self._groups: tuple[_Origin, ...] = (
            _Origin((self._overrides, bundled)),
            *(_Origin((extra.data,)) for extra in extras),
        )
        known: list[frozenset[str]] = []
        acc: frozenset[str] = frozenset()
        for group in self._groups:
            acc = acc | group.models
            known.append(acc)
        self._known = tuple(known)  # models of each origin and of all origins before it
        self._models = acc
        self._version = _digest(bundled_digest, self._overrides, extras)
        self._shadowed = self._find_shadowed()

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
        return PriceTable(self._bundled, self._bundled_digest, merged, self._extras)

    def with_extra_table(self, label: str, raw: bytes) -> PriceTable:
        """A new table with one more extra price file, validated like the bundled one."""
        if any(e.label == label for e in self._extras):
            raise PriceDataError(f"{label}: extra price table listed twice")
        data = parse_data(raw, where=label, origin=f"extra:{label}")
        extra = ExtraTable(label=label, data=data, digest=hashlib.sha256(raw).hexdigest())
        return PriceTable(self._bundled, self._bundled_digest, self._overrides, (*self._extras, extra))

    @property
    def version(self) -> str:
        """Stable hash of the bundled data, the overrides and the extra tables."""
        return self._version

    @property
    def aliases(self) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for group in reversed(self._groups):
            out.update(group.aliases)
        return out

    @property
    def extra_labels(self) -> tuple[str, ...]:
        return tuple(e.label for e in self._extras)

    def models(self) -> list[str]:
        return sorted(self._models)

    def reviewed_models(self) -> list[str]:
        """The models of the reviewed table and the overrides (not those of extra tables)."""
        return sorted(self._groups[0].models)

    def resolve(self, model: str) -> str | None:
        """The table model ``model`` prices as (exact, snapshot family, alias), or None.

        Origins are tried in order, so a name the reviewed table knows never reaches an extra
        table; an extra table's alias may name a model of an earlier origin.
        """
        for group, known in zip(self._groups, self._known, strict=True):
            matched = match_model(model, known.__contains__, group.aliases)
            if matched is not None:
                return matched
        return None

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
        for group in self._groups:
            if model in group.models:  # the first origin that knows the model owns it
                return group.row_in_force(model, tier, day)
        return None

    def shadowed(self) -> list[Shadowed]:
        """Rows of extra tables hidden by an earlier origin's model: each disagreement is reported."""
        return list(self._shadowed)

    def rows(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts: every version without ``at``, else the rows in force at ``at``.

        Rows an earlier origin hides are listed too, with ``shadowed_by`` naming the winner.
        """
        hidden = {s.row.price_id: s for s in self._shadowed}
        out: list[dict[str, Any]] = []
        for group in self._groups:
            if at is None:
                for layer in group.layers:
                    for versions in layer.values():
                        for i, row in enumerate(versions):
                            nxt = versions[i + 1].valid_from if i + 1 < len(versions) else None
                            out.append(_row_json(row, nxt, hidden.get(row.price_id)))
            else:
                day = utc_day(at)
                for model, tier in sorted({key for layer in group.layers for key in layer}):
                    in_force = group.row_in_force(model, tier, day)
                    if in_force is not None:
                        nxt = self._next_version(group, in_force)
                        out.append(_row_json(in_force, nxt, hidden.get(in_force.price_id)))
        tier_order = {"default": 0, "flex": 1, "priority": 2, "batch": 3}
        out.sort(key=lambda r: (r["model"], tier_order[r["tier"]], r["origin"], r["valid_from"]))
        return out

    @staticmethod
    def _next_version(group: _Origin, row: PriceRow) -> date | None:
        layer = group.layer_of(row)
        later = [r.valid_from for r in layer.get((row.model, row.tier), ()) if r.valid_from > row.valid_from]
        return min(later) if later else None

    def _find_shadowed(self) -> tuple[Shadowed, ...]:
        out: list[Shadowed] = []
        for k, group in enumerate(self._groups[1:], start=1):
            earlier = self._known[k - 1]
            for layer in group.layers:
                for (model, tier), versions in sorted(layer.items()):
                    if model not in earlier:
                        continue
                    for row in versions:
                        winner = self.row_in_force(model, tier, row.valid_from)
                        fields = _differing(row, winner)
                        out.append(Shadowed(row=row, winner=winner, fields=fields))
        return tuple(out)


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


_COMPARED = (*MONEY_FIELDS, "long_context_threshold", "per_image", "default_image")


def _price_text(row: PriceRow | None, name: str) -> Any:
    if row is None:
        return None
    if name == "per_image":
        return {f"{p.quality}:{p.size}": money_str(p.price) for p in row.per_image} or None
    value = getattr(row, name)
    return money_str(value) if isinstance(value, Decimal) else value


def _differing(row: PriceRow, winner: PriceRow | None) -> tuple[str, ...]:
    """The price fields where ``row`` says something else than ``winner`` (all of them when None)."""
    return tuple(
        name
        for name in _COMPARED
        if _price_text(row, name) is not None or winner is not None
        if _price_text(row, name) != _price_text(winner, name)
    )


def _row_json(row: PriceRow, valid_to: date | None, shadowed: Shadowed | None = None) -> dict[str, Any]:
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
    if shadowed is not None:
        # Never applied: an earlier origin owns this model. The fields say where they disagree.
        out["shadowed_by"] = shadowed.winner.price_id if shadowed.winner else row.model
        out["disagrees_on"] = list(shadowed.fields)
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


def _digest(bundled_digest: str, overrides: PriceData, extras: tuple[ExtraTable, ...]) -> str:
    h = hashlib.sha256(bundled_digest.encode())
    h.update(json.dumps(_row_dicts(overrides), sort_keys=True, default=str).encode())
    for extra in extras:  # order matters: the first extra table that knows a model prices it
        h.update(f"\0{extra.label}\0{extra.digest}".encode())
    return h.hexdigest()[:16]
