"""A foreign source against our table: what the table lacks, where they disagree, a file for the gap.

Pure: a :class:`PriceTable` and :class:`ForeignPrices` in, an :class:`ImportReport` and TOML text out.
Prices are compared as of one day (the sources' current prices; genai-prices' history is checked by
``pricing check``), each field as the engine applies it (cached input and cache writes fall back
to the input rate on both sides, as LiteLLM and genai-prices bill them too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from spendscope.pricing.findings import MISSING, Disagreement
from spendscope.pricing.foreign import ForeignModel, ForeignPrices
from spendscope.pricing.loading import parse_data
from spendscope.pricing.model import MONEY_FIELDS, TIERS, PriceRow, Tier, money_str
from spendscope.pricing.table import PriceTable

__all__ = ["ImportReport", "compare_foreign", "covering_model", "render_price_file"]

# Our field → the field whose price applies when it has none (the engine's documented fallbacks).
_FALLBACK: dict[str, str] = {
    "cached_input_per_mtok": "input_per_mtok",
    "cache_write_per_mtok": "input_per_mtok",
    "cached_input_audio_per_mtok": "input_audio_per_mtok",
    "cached_input_image_per_mtok": "input_image_per_mtok",
    "long_context_cached_input_per_mtok": "long_context_input_per_mtok",
    "long_context_cache_write_per_mtok": "long_context_input_per_mtok",
}
_BASE_FIELDS = tuple(f for f in MONEY_FIELDS if not f.startswith("long_context_"))
_LONG_FIELDS = tuple(f for f in MONEY_FIELDS if f.startswith("long_context_"))


@dataclass(frozen=True, slots=True)
class ImportReport:
    """A foreign source against the table in force, as of ``at``."""

    format: str
    origin: str
    at: date
    models: int  # OpenAI models the source prices
    covered: tuple[tuple[str, str], ...]  # (their name, our model)
    lacks: tuple[ForeignModel, ...]  # models the table does not price
    disagreements: tuple[Disagreement, ...]  # prices both have that differ
    ignored: tuple[tuple[str, str], ...]  # entries of the source not read, and why

    @property
    def coverage(self) -> Decimal:
        """The share of the source's models that the table prices (1 when the source is empty)."""
        return Decimal(len(self.covered)) / Decimal(self.models) if self.models else Decimal(1)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "origin": self.origin,
            "at": self.at.isoformat(),
            "models": self.models,
            "covered": len(self.covered),
            "coverage": money_str(round(self.coverage, 4)),
            "lacks": [
                {
                    "model": m.name,
                    "names": list(m.names),
                    "prefixes": list(m.prefixes),
                    "tiers": sorted({r.tier for r in m.rows}, key=TIERS.index),
                    "skipped": list(m.skipped),
                }
                for m in self.lacks
            ],
            "disagreements": [d.as_json() for d in self.disagreements],
            "ignored": [{"entry": e, "reason": why} for e, why in self.ignored],
        }


def covering_model(table: PriceTable, model: ForeignModel) -> str | None:
    """Our model that prices what the source calls ``model``: by any of its names, else its prefixes."""
    for name in model.names:
        matched = table.resolve(name)
        if matched is not None:
            return matched
    for prefix in model.prefixes:
        for ours in table.models():
            if ours.startswith(prefix):
                return ours
    return None


def compare_foreign(table: PriceTable, foreign: ForeignPrices, at: date) -> ImportReport:
    covered: list[tuple[str, str]] = []
    lacks: list[ForeignModel] = []
    found: dict[tuple[str, str, str, str, str], Disagreement] = {}
    # A snapshot or alias the source lists beside its model repeats that model's findings: each is
    # reported once, under the name that is our model's own when the source has it.
    resolved = {m.name: table.resolve(m.name) for m in foreign.models}
    for model in sorted(foreign.models, key=lambda m: resolved[m.name] != m.name):
        ours = covering_model(table, model)
        if ours is None:
            lacks.append(model)
            continue
        covered.append((model.name, ours))
        exact = resolved[model.name]
        if exact is None:  # a prefix match says the model is known, not which row to compare
            continue
        for d in _compare_model(table, model, exact, at, foreign.format):
            found.setdefault((exact, d.tier, d.field, d.ours, d.theirs), d)
    order = {m.name: i for i, m in enumerate(foreign.models)}
    lacks.sort(key=lambda m: order[m.name])
    return ImportReport(
        format=foreign.format,
        origin=foreign.origin,
        at=at,
        models=len(foreign.models),
        covered=tuple(covered),
        lacks=tuple(lacks),
        disagreements=tuple(sorted(found.values(), key=lambda d: (order[d.model], TIERS.index(d.tier)))),
        ignored=foreign.ignored,
    )


def _in_force(rows: tuple[PriceRow, ...], tier: Tier, day: date) -> PriceRow | None:
    best: PriceRow | None = None
    for row in sorted((r for r in rows if r.tier == tier), key=lambda r: r.valid_from):
        if row.valid_from <= day:
            best = row
    return best


def _compare_model(
    table: PriceTable, model: ForeignModel, ours_name: str, day: date, source: str
) -> list[Disagreement]:
    matched = ours_name if ours_name != model.name else None
    out: list[Disagreement] = []

    def add(tier: Tier, field: str, ours: str, theirs: str) -> None:
        out.append(Disagreement(model.name, tier, field, ours, theirs, day, source=source, matched=matched))

    for tier in TIERS:
        mine = table.row_in_force(ours_name, tier, day)
        theirs = _in_force(model.rows, tier, day)
        if mine is None and theirs is None:
            continue
        if mine is None or theirs is None:
            add(tier, "tier", "priced" if mine else MISSING, "priced" if theirs else MISSING)
            continue
        for field in _BASE_FIELDS:
            a, b = _effective(mine, field), _effective(theirs, field)
            if a != b:
                add(tier, field, _s(a), _s(b))
        if (mine.long_context_threshold, *(_effective(mine, f) for f in _LONG_FIELDS)) != (
            theirs.long_context_threshold,
            *(_effective(theirs, f) for f in _LONG_FIELDS),
        ):
            for field in _LONG_FIELDS:
                long_a, long_b = _long(mine, field), _long(theirs, field)
                if long_a != long_b:
                    add(tier, f"long_context:{field.removeprefix('long_context_')}", long_a, long_b)
    return out


def _effective(row: PriceRow, field: str) -> Decimal | None:
    value = row.money(field)
    if value is None and field in _FALLBACK:
        value = row.money(_FALLBACK[field])
    return value


def _s(value: Decimal | None) -> str:
    return money_str(value) or MISSING


def _long(row: PriceRow, field: str) -> str:
    value = _effective(row, field)
    if row.long_context_threshold is None or value is None:
        return MISSING
    return f">{row.long_context_threshold}:{money_str(value)}"


def render_price_file(report: ImportReport, table: PriceTable, *, today: date) -> str:
    """A price file (the bundled table's format) with every model the table lacks.

    Each row's ``source`` names the origin and the import date; the file is parsed back before it
    is returned, so what is written always loads.
    """
    lines = [
        f"# Prices imported by `spendscope pricing import` on {today.isoformat()}",
        f"# from {report.origin} ({report.format} format): the {len(report.lacks)} OpenAI model(s)",
        "# the table in force did not price. Review before use: these prices are a secondary",
        "# source's, not OpenAI's. Add the file to [pricing] extra_tables; a reviewed row always wins.",
        "",
        "schema = 1",
    ]
    aliases: list[tuple[str, str]] = []
    written = {m.name for m in report.lacks}
    for model in report.lacks:
        lines.append("")
        skipped = f" (not imported: {', '.join(model.skipped)})" if model.skipped else ""
        lines.append(f"# {model.name}{skipped}")
        for row in model.rows:
            lines.extend(_row_toml(row))
        for name in model.names[1:]:
            if name not in written and table.resolve(name) is None:
                written.add(name)
                aliases.append((name, model.name))
    for alias, target in aliases:
        lines.extend(
            [
                "",
                "[[alias]]",
                f"alias = {_q(alias)}",
                f"model = {_q(target)}",
                f"source = {_q(f'{report.format} ({report.origin}), imported {today.isoformat()}')}",
            ]
        )
    text = "\n".join(lines) + "\n"
    parse_data(text.encode(), where="the imported price file", origin="import")  # never write a bad file
    return text


def _row_toml(row: PriceRow) -> list[str]:
    out = ["", "[[price]]", f"model = {_q(row.model)}"]
    if row.tier != "default":
        out.append(f"tier = {_q(row.tier)}")
    out.append(f"valid_from = {row.valid_from.isoformat()}")
    for field in MONEY_FIELDS:
        value = row.money(field)
        if value is not None:
            out.append(f"{field} = {_number(value)}")
    if row.long_context_threshold is not None:
        out.append(f"long_context_threshold = {row.long_context_threshold}")
    out.append(f"source = {_q(row.source)}")
    out.append(f"checked = {row.checked.isoformat()}")
    if row.note:
        out.append(f"note = {_q(row.note)}")
    return out


def _number(value: Decimal) -> str:
    text = money_str(value)  # a plain decimal: TOML reads it as an integer or a float, loaded as Decimal
    assert text is not None
    return text


def _q(text: str) -> str:
    """A TOML basic string: JSON's escaping is valid TOML for the characters names can hold."""
    return json.dumps(text, ensure_ascii=True)
