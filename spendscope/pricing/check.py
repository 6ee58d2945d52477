"""Cross-check of our table against independent sources: genai-prices and LiteLLM's price map.

Every disagreement is listed with both values; each is either fixed in the data or reviewed in
``data/check_exceptions.toml`` with its reason. The exceptions pin both values, so an entry stops
applying (and the disagreement resurfaces) as soon as either side changes.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib import resources
from typing import Any

from spendscope.pricing.findings import MISSING, Disagreement
from spendscope.pricing.foreign import parse_genai_prices, parse_litellm
from spendscope.pricing.importing import compare_foreign
from spendscope.pricing.loading import PriceDataError
from spendscope.pricing.model import TIERS, PriceRow, Tier, money_str
from spendscope.pricing.table import PriceTable

__all__ = [
    "COMPARED_FIELDS",
    "Disagreement",
    "ReviewedException",
    "check_all",
    "compare_with_genai_prices",
    "compare_with_genai_prices_data",
    "compare_with_litellm",
    "genai_prices_data_json",
    "load_exceptions",
    "mark_reviewed",
]

EXCEPTIONS_FILE = "check_exceptions.toml"
SOURCES = ("genai-prices", "litellm")

# Our field → genai-prices' price key (both USD per million tokens).
COMPARED_FIELDS: dict[str, str] = {
    "input_per_mtok": "input_mtok",
    "cached_input_per_mtok": "cache_read_mtok",
    "cache_write_per_mtok": "cache_write_mtok",
    "output_per_mtok": "output_mtok",
}
_LONG_FIELDS: dict[str, str] = {
    "input_per_mtok": "long_context_input_per_mtok",
    "cached_input_per_mtok": "long_context_cached_input_per_mtok",
    "cache_write_per_mtok": "long_context_cache_write_per_mtok",
    "output_per_mtok": "long_context_output_per_mtok",
}
# How each of our tiers is asked of genai-prices.
_CONTEXTS: dict[Tier, dict[str, str] | None] = {
    "default": None,
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
    "batch": {"processing": "batch"},
}


@dataclass(frozen=True, slots=True)
class ReviewedException:
    source: str  # the source the disagreement was reviewed against
    model: str
    tier: Tier
    field: str
    ours: str
    theirs: str
    reason: str
    reviewed: date

    def covers(self, d: Disagreement) -> bool:
        return (d.source, d.model, d.tier, d.field, d.ours, d.theirs) == (
            self.source,
            self.model,
            self.tier,
            self.field,
            self.ours,
            self.theirs,
        )


def load_exceptions(raw: bytes | None = None) -> list[ReviewedException]:
    """The reviewed exceptions (bundled file unless ``raw`` is given), validated."""
    where = f"spendscope/pricing/data/{EXCEPTIONS_FILE}"
    if raw is None:
        raw = resources.files("spendscope.pricing").joinpath("data", EXCEPTIONS_FILE).read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PriceDataError(f"{where}: not valid TOML: {exc}") from exc
    out: list[ReviewedException] = []
    for i, item in enumerate(doc.get("exception", [])):
        at = f"{where}: [[exception]] #{i + 1}"
        keys = {"source", "model", "tier", "field", "ours", "theirs", "reason", "reviewed"}
        if set(item) != keys:
            raise PriceDataError(f"{at}: needs exactly the keys {sorted(keys)}, got {sorted(item)}")
        if item["source"] not in SOURCES:
            raise PriceDataError(f"{at}: key 'source' must be one of {list(SOURCES)}")
        if item["tier"] not in TIERS:
            raise PriceDataError(f"{at}: key 'tier' must be one of {list(TIERS)}")
        if not isinstance(item["reviewed"], date) or not str(item["reason"]).strip():
            raise PriceDataError(f"{at}: 'reviewed' must be a date and 'reason' non-empty")
        out.append(
            ReviewedException(
                source=str(item["source"]),
                model=str(item["model"]),
                tier=item["tier"],
                field=str(item["field"]),
                ours=str(item["ours"]),
                theirs=str(item["theirs"]),
                reason=str(item["reason"]),
                reviewed=item["reviewed"],
            )
        )
    return out


def compare_with_genai_prices(
    table: PriceTable,
    at: datetime | None = None,
    exceptions: Iterable[ReviewedException] | None = None,
) -> list[Disagreement]:
    """Every disagreement between ``table`` and genai-prices' OpenAI data, reviewed ones marked.

    Standard prices are compared at ``at`` (default now) and at each ``valid_from`` of our standard
    rows, so price history is checked too; flex, priority and batch are compared at ``at``. Only
    token prices are compared (audio, image and per-unit prices have no common shape there).
    Raises ImportError when genai-prices is not installed.
    """
    from genai_prices import data as gp_data  # noqa: PLC0415 (a dev dependency: only when checking)

    now = (at or datetime.now(UTC)).astimezone(UTC)
    provider = next(p for p in gp_data.providers if p.id == "openai")
    found: list[Disagreement] = []
    our_models = set(table.models())
    for model in sorted(our_models):
        if model.startswith("ft:"):
            continue  # genai-prices names fine-tunes by prefix rules we do not share
        gp_model = provider.find_model(model)
        standard = [r for r in table.rows() if r["model"] == model and r["tier"] == "default"]
        if not _is_token_priced(table, model, now):
            continue
        if gp_model is None:
            found.append(Disagreement(model, "default", "model", "priced", MISSING, now.date()))
            continue
        days = sorted({now.date()} | {date.fromisoformat(r["valid_from"]) for r in standard})
        for day in days:
            ours = table.row_in_force(model, "default", day)
            if ours is not None:
                found.extend(_compare_row(model, "default", ours, gp_model, day, ctx=None))
        for tier in ("flex", "priority", "batch"):
            ours = table.row_in_force(model, tier, now.date())
            ctx = _CONTEXTS[tier]
            assert ctx is not None
            has_theirs = _has_variant(gp_model, ctx, now)
            if ours is None and has_theirs:
                found.append(Disagreement(model, tier, "tier", MISSING, "priced", now.date()))
            elif ours is not None and not has_theirs:
                found.append(Disagreement(model, tier, "tier", "priced", MISSING, now.date()))
            elif ours is not None:
                found.extend(_compare_row(model, tier, ours, gp_model, now.date(), ctx=ctx))
    # Their OpenAI token-priced models that match nothing of ours.
    for gp_model in provider.models:
        if _gp_token_priced(gp_model, now) and not _covered(table, gp_model):
            found.append(Disagreement(str(gp_model.id), "default", "model", MISSING, "priced", now.date()))
    reviewed = list(exceptions) if exceptions is not None else load_exceptions()
    return [mark_reviewed(d, reviewed) for d in _dedupe(found)]


def compare_with_genai_prices_data(
    table: PriceTable,
    at: datetime | None = None,
    exceptions: Iterable[ReviewedException] | None = None,
) -> list[Disagreement]:
    """genai-prices' current OpenAI prices read the way ``pricing import`` reads them, against ours.

    :func:`compare_with_genai_prices` walks genai-prices' history for the text token prices; this
    compares every token kind (audio, image) and fine-tunes at ``at``, as an import would.
    """
    day = (at or datetime.now(UTC)).astimezone(UTC).date()
    raw = genai_prices_data_json(("openai",))
    report = compare_foreign(table, parse_genai_prices(raw, origin="genai-prices", today=day), day)
    found = [Disagreement(m.name, "default", "model", MISSING, "priced", day) for m in report.lacks]
    found.extend(report.disagreements)
    reviewed = list(exceptions) if exceptions is not None else load_exceptions()
    return [mark_reviewed(d, reviewed) for d in found]


def genai_prices_data_json(provider_ids: tuple[str, ...]) -> bytes:
    """The installed genai-prices' data (Python objects in its wheel) as the JSON its updater fetches.

    Raises ImportError when genai-prices is not installed.
    """
    from genai_prices import data as gp_data  # noqa: PLC0415 (a dev dependency: only when checking)

    doc = [_plain(p) for p in gp_data.providers if p.id in provider_ids]
    # Decimals travel as marked strings and come out as bare JSON numbers: exact, as in data.json.
    return _DECIMAL_MARK.sub(r"\1", json.dumps(doc, indent=1)).encode()


_DECIMAL_MARK = re.compile(r'"@dec:([0-9.eE+-]+)@"')


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"@dec:{value}@"
    if isinstance(value, date | time):
        return value.isoformat()
    if type(value).__name__ == "ModelPrice":  # a plain class with one attribute per price key
        return {k: _plain(v) for k, v in vars(value).items() if v is not None and not k.startswith("_")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name, None)
            if f.init and v is not None and not f.name.startswith("_"):
                out[f.name.rstrip("_")] = _plain(v)  # the clauses' or_/and_ are "or"/"and" in the data
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def compare_with_litellm(
    table: PriceTable,
    raw: bytes,
    *,
    origin: str,
    at: datetime | None = None,
    exceptions: Iterable[ReviewedException] | None = None,
) -> list[Disagreement]:
    """Every disagreement with LiteLLM's price map (``raw``), reviewed ones marked.

    LiteLLM keeps no history, so its current prices are compared with ours in force at ``at``;
    a model it prices that we do not is a disagreement on the field ``model``.
    """
    day = (at or datetime.now(UTC)).astimezone(UTC).date()
    report = compare_foreign(table, parse_litellm(raw, origin=origin, today=day), day)
    found = [
        Disagreement(m.name, "default", "model", MISSING, "priced", day, source="litellm")
        for m in report.lacks
    ]
    found.extend(report.disagreements)
    reviewed = list(exceptions) if exceptions is not None else load_exceptions()
    return [mark_reviewed(d, reviewed) for d in found]


def check_all(
    table: PriceTable, litellm: bytes, *, litellm_origin: str, at: datetime | None = None
) -> list[Disagreement]:
    """What ``pricing check`` lists: genai-prices (its history, then every token kind) and LiteLLM."""
    found = compare_with_genai_prices(table, at)
    found += compare_with_genai_prices_data(table, at)
    found += compare_with_litellm(table, litellm, origin=litellm_origin, at=at)
    return _dedupe(found)


def _dedupe(found: list[Disagreement]) -> list[Disagreement]:
    """One line per (source, model, tier, field, ours, theirs): a gap seen twice is one finding."""
    seen: set[tuple[str, str, str, str, str, str]] = set()
    out: list[Disagreement] = []
    for d in found:
        key = (d.source, d.model, d.tier, d.field, d.ours, d.theirs)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def mark_reviewed(d: Disagreement, reviewed: Iterable[ReviewedException]) -> Disagreement:
    """``d`` with the reason of the exception that covers it, if one does."""
    for exc in reviewed:
        if exc.covers(d):
            return replace(d, reviewed=exc.reason)
    return d


def _is_token_priced(table: PriceTable, model: str, at: datetime) -> bool:
    row = table.row_in_force(model, "default", at.date())
    return row is not None and row.input_per_mtok is not None


def _gp_token_priced(gp_model: Any, at: datetime) -> bool:
    prices = gp_model.get_prices(at)
    return getattr(prices, "input_mtok", None) is not None or getattr(prices, "output_mtok", None) is not None


def _covered(table: PriceTable, gp_model: Any) -> bool:
    """Whether any name genai-prices prices as this model is priced by us too."""
    models = table.models()
    for clause in _walk_clauses(gp_model.match):
        equals = getattr(clause, "equals", None)
        if isinstance(equals, str) and table.resolve(equals) is not None:
            return True
        prefix = getattr(clause, "starts_with", None)
        if isinstance(prefix, str) and any(m.startswith(prefix) for m in models):
            return True
    return table.resolve(str(gp_model.id)) is not None


def _walk_clauses(clause: Any) -> Iterator[Any]:
    yield clause
    for child in getattr(clause, "or_", None) or ():
        yield from _walk_clauses(child)


def _has_variant(gp_model: Any, ctx: Mapping[str, str], at: datetime) -> bool:
    for variant in gp_model.price_variants or ():
        if variant.constraint is not None and not variant.constraint.active(at):
            continue
        if all(ctx.get(k) == v for k, v in variant.when.items()) and any(
            v is not None for v in variant.prices.__dict__.values()
        ):
            return True
        if all(ctx.get(k) == v for k, v in variant.when.items()) and ctx.get("processing") == "batch":
            return True  # an empty batch variant says "batch costs the same as standard"
    return False


def _compare_row(
    model: str, tier: Tier, ours: PriceRow, gp_model: Any, day: date, *, ctx: Mapping[str, str] | None
) -> list[Disagreement]:
    when = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    theirs = gp_model.get_prices(when, dict(ctx) if ctx else None)
    out: list[Disagreement] = []
    if getattr(theirs, "input_mtok", None) is None and getattr(theirs, "output_mtok", None) is None:
        return [Disagreement(model, tier, "token_prices", "priced", MISSING, day)]
    for field, key in COMPARED_FIELDS.items():
        mine = _effective(ours, field)
        base, tiers = _their_price(theirs, key)
        if base is None and key in ("cache_read_mtok", "cache_write_mtok"):
            base, tiers = _their_price(theirs, "input_mtok")  # genai-prices bills them at input too
        if mine != base:
            out.append(Disagreement(model, tier, field, _s(mine), _s(base), day))
        their_long = tiers[0] if tiers else None
        my_long = _effective(ours, _LONG_FIELDS[field]) if ours.long_context_threshold is not None else None
        if (my_long is None) != (their_long is None) or (
            their_long is not None
            and (their_long[0] != ours.long_context_threshold or their_long[1] != my_long)
        ):
            if mine is None and base is None:
                continue
            out.append(
                Disagreement(
                    model,
                    tier,
                    f"long_context:{field}",
                    _long_s(ours.long_context_threshold, my_long),
                    _long_s(their_long[0], their_long[1]) if their_long else MISSING,
                    day,
                )
            )
    return out


def _effective(row: PriceRow, field: str) -> Decimal | None:
    """Our price as the engine applies it: cached input and cache writes fall back to input."""
    value = row.money(field)
    if (value is None and "cached_input" in field) or (value is None and "cache_write" in field):
        value = row.money(field.replace("cached_input", "input").replace("cache_write", "input"))
    return value


def _their_price(prices: Any, key: str) -> tuple[Decimal | None, list[tuple[int, Decimal]]]:
    value = getattr(prices, key, None)
    if value is None:
        return None, []
    if isinstance(value, Decimal):
        return value, []
    return value.base, [(int(t.start), t.price) for t in value.tiers]


def _s(value: Decimal | None) -> str:
    return money_str(value) or MISSING


def _long_s(threshold: int | None, price: Decimal | None) -> str:
    if threshold is None or price is None:
        return MISSING
    return f">{threshold}:{money_str(price)}"
