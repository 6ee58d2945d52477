"""Other projects' price data read into our rows: LiteLLM's model-price JSON and genai-prices' data.

Pure: bytes in, :class:`ForeignPrices` out. Only OpenAI's models are read (LiteLLM providers
``openai`` and ``text-completion-openai``, genai-prices provider ``openai``); each becomes one
:class:`ForeignModel` with :class:`PriceRow` s in our units (USD per million tokens), so the same
comparison and the same price file serve ``pricing import`` and ``pricing check``. A price that has
no place in our rows (web-search calls, per-pixel image estimates, time-of-day windows) is listed
in ``skipped``, never folded into another price. Anything malformed raises :class:`PriceDataError`
naming the entry and the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

from spendscope.pricing.loading import PriceDataError
from spendscope.pricing.model import TIERS, PriceRow, Tier

__all__ = [
    "FORMATS",
    "MAX_SOURCE_BYTES",
    "UNDATED",
    "ForeignModel",
    "ForeignPrices",
    "SourceFormat",
    "parse_foreign",
    "parse_genai_prices",
    "parse_litellm",
]

SourceFormat = Literal["litellm", "genai-prices"]
FORMATS: tuple[SourceFormat, ...] = ("litellm", "genai-prices")
# LiteLLM's file is about 3 MB, genai-prices' about 2 MB; 64 MiB leaves room and bounds memory.
MAX_SOURCE_BYTES = 64 * 1024 * 1024
# LiteLLM gives no dates and genai-prices none for a model's first price: such a row applies to
# every call of the model, so it starts at the OpenAI API's launch (no call can be older).
UNDATED = date(2020, 6, 11)
_MILLION = Decimal(1_000_000)
_MAX_NAME = 200
_NAME = re.compile(r"^[a-z0-9][a-z0-9._:/@+-]*$")
# Per-second and per-character rates times 60 or a million carry the source's rounding of a
# rounder price (0.000833333333333 x 60); 12 significant digits give that price back.
_SIGNIFICANT = 12

_LITELLM_PROVIDERS = frozenset({"openai", "text-completion-openai"})
_LITELLM_SKIPPED_MODES = frozenset({"video_generation"})
# LiteLLM key stem → our field; each stem may carry a tier suffix and an ``_above_Nk_tokens`` part.
_LITELLM_TOKEN_FIELDS: dict[str, str] = {
    "input_cost_per_token": "input_per_mtok",
    "cache_read_input_token_cost": "cached_input_per_mtok",
    "cache_creation_input_token_cost": "cache_write_per_mtok",
    "output_cost_per_token": "output_per_mtok",
    "input_cost_per_audio_token": "input_audio_per_mtok",
    "cache_read_input_audio_token_cost": "cached_input_audio_per_mtok",
    "output_cost_per_audio_token": "output_audio_per_mtok",
    "input_cost_per_image_token": "input_image_per_mtok",
    "cache_read_input_image_token_cost": "cached_input_image_per_mtok",
    "output_cost_per_image_token": "output_image_per_mtok",
}
_LITELLM_TIER_SUFFIXES: dict[str, Tier] = {"_flex": "flex", "_priority": "priority", "_batches": "batch"}
_LITELLM_LONG = re.compile(r"^(?P<stem>.+)_above_(?P<k>\d+)k_tokens(?P<tier>_flex|_priority|_batches)?$")
_LITELLM_INFO_KEYS = frozenset(
    {
        "litellm_provider",
        "mode",
        "max_tokens",
        "max_input_tokens",
        "max_output_tokens",
        "deprecation_date",
        "source",
        "supported_endpoints",
        "supported_modalities",
        "supported_output_modalities",
        "output_vector_size",
        "reasoning_contexts",
        "reasoning_modes",
        "default_reasoning_effort",
        "supported_regions",
        "tpm",
        "rpm",
        "metadata",
        "comments",
    }
)

# genai-prices price key → our field (both USD per million tokens).
_GP_TOKEN_FIELDS: dict[str, str] = {
    "input_mtok": "input_per_mtok",
    "cache_read_mtok": "cached_input_per_mtok",
    "cache_write_mtok": "cache_write_per_mtok",
    "output_mtok": "output_per_mtok",
    "input_audio_mtok": "input_audio_per_mtok",
    "cache_audio_read_mtok": "cached_input_audio_per_mtok",
    "output_audio_mtok": "output_audio_per_mtok",
    "input_image_mtok": "input_image_per_mtok",
    "cache_image_read_mtok": "cached_input_image_per_mtok",
    "output_image_mtok": "output_image_per_mtok",
}
# How a genai-prices variant's ``when`` names our tiers (``fast`` is reported as priority).
_GP_VARIANTS: dict[tuple[str, str], Tier] = {
    ("service_tier", "default"): "default",
    ("service_tier", "flex"): "flex",
    ("service_tier", "priority"): "priority",
    ("service_tier", "fast"): "priority",
    ("processing", "batch"): "batch",
}


@dataclass(frozen=True, slots=True)
class ForeignModel:
    """One model of a foreign source, its prices as our rows (origin ``import``)."""

    name: str  # the source's own name: LiteLLM's key, genai-prices' model id
    names: tuple[str, ...]  # every exact name the source prices as this model (name first)
    prefixes: tuple[str, ...] = ()  # genai-prices ``starts_with`` clauses
    rows: tuple[PriceRow, ...] = ()
    skipped: tuple[str, ...] = ()  # prices the source gives that have no place in our rows


@dataclass(frozen=True, slots=True)
class ForeignPrices:
    format: SourceFormat
    origin: str  # the file or URL read
    models: tuple[ForeignModel, ...]
    ignored: tuple[tuple[str, str], ...] = field(default=())  # (entry, why it was not read)


def parse_foreign(raw: bytes, fmt: SourceFormat, *, origin: str, today: date) -> ForeignPrices:
    if fmt == "litellm":
        return parse_litellm(raw, origin=origin, today=today)
    if fmt == "genai-prices":
        return parse_genai_prices(raw, origin=origin, today=today)
    raise PriceDataError(f"unknown format {fmt!r}; use one of {list(FORMATS)}")


def _load_json(raw: bytes, origin: str, fmt: str) -> Any:
    if len(raw) > MAX_SOURCE_BYTES:
        raise PriceDataError(f"{origin}: larger than {MAX_SOURCE_BYTES} bytes; not a {fmt} price file")
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_int=Decimal)
    except UnicodeDecodeError as exc:
        raise PriceDataError(f"{origin}: not UTF-8 text ({exc.reason}); expected {fmt} JSON") from None
    except ValueError as exc:
        raise PriceDataError(f"{origin}: not valid JSON ({exc}); expected {fmt} JSON") from None


def _money(value: object, where: str, key: str, factor: Decimal = _MILLION) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise PriceDataError(f"{where}: {key!r} must be a number, got {value!r}")
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise PriceDataError(f"{where}: {key!r} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise PriceDataError(f"{where}: {key!r} must be a finite number >= 0, got {value!r}")
    scaled = number * factor
    if scaled == 0:
        return Decimal(0)
    if len(scaled.normalize().as_tuple().digits) > _SIGNIFICANT:
        scaled = round(scaled, _SIGNIFICANT - 1 - scaled.adjusted())
    plain = scaled.normalize()
    exponent = plain.as_tuple().exponent
    return plain.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else plain  # 10, not 1E+1


def _clean_name(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    name = name.strip().lower()
    if name.startswith("openai/"):
        name = name[len("openai/") :]
    return name if 0 < len(name) <= _MAX_NAME and _NAME.match(name) else None


def _row(
    model: str, tier: Tier, valid_from: date, prices: Mapping[str, Decimal], *, source: str, today: date
) -> PriceRow:
    return PriceRow(
        model=model,
        tier=tier,
        valid_from=valid_from,
        source=source,
        checked=today,
        origin="import",
        note=None if valid_from != UNDATED else "The source gives no start date.",
        **cast(dict[str, Any], dict(prices)),
    )


def _valid(prices: Mapping[str, Any]) -> bool:
    """A row needs a price, and long-context rates need their threshold (and the reverse)."""
    has_long = any(k.startswith("long_context_") and k != "long_context_threshold" for k in prices)
    return any(k != "long_context_threshold" for k in prices) and has_long == (
        "long_context_threshold" in prices
    )


# --- LiteLLM ----------------------------------------------------------------------------------------


def parse_litellm(raw: bytes, *, origin: str, today: date) -> ForeignPrices:
    """LiteLLM's ``model_prices_and_context_window.json``: per-token USD prices keyed by model."""
    doc = _load_json(raw, origin, "LiteLLM")
    if not isinstance(doc, dict):
        raise PriceDataError(f"{origin}: expected a JSON object of model entries (LiteLLM format)")
    source = f"LiteLLM model price map ({origin}), imported {today.isoformat()}"
    models: list[ForeignModel] = []
    ignored: list[tuple[str, str]] = []
    for key, entry in doc.items():
        if key == "sample_spec":
            continue
        if not isinstance(entry, dict):
            raise PriceDataError(f"{origin}: entry {key!r} must be an object, got {type(entry).__name__}")
        if entry.get("litellm_provider") not in _LITELLM_PROVIDERS:
            continue
        name = _clean_name(key)
        if name is None:
            ignored.append(
                (str(key)[:_MAX_NAME], "not a model name (per-size image estimate or odd characters)")
            )
            continue
        if entry.get("mode") in _LITELLM_SKIPPED_MODES:
            ignored.append((name, f"mode {entry.get('mode')!r} is not priced by spendscope"))
            continue
        model = _litellm_model(name, entry, where=f"{origin}: entry {key!r}", source=source, today=today)
        if model.rows:
            models.append(model)
        else:
            ignored.append((name, "no price spendscope can use (" + ", ".join(model.skipped) + ")"))
    if not models and not ignored:
        raise PriceDataError(f"{origin}: no OpenAI model found; is this LiteLLM's model price JSON?")
    return ForeignPrices("litellm", origin, tuple(models), tuple(ignored))


def _litellm_model(
    name: str, entry: Mapping[str, Any], *, where: str, source: str, today: date
) -> ForeignModel:
    tiers: dict[Tier, dict[str, Decimal]] = {}
    thresholds: set[int] = set()
    skipped: list[str] = []
    for key, value in entry.items():
        if key in _LITELLM_INFO_KEYS or key.startswith("supports_") or value is None:
            continue
        target = _litellm_field(key)
        if target is None:
            if key == "input_cost_per_second":
                tiers.setdefault("default", {})["per_minute"] = _money(value, where, key, Decimal(60))
            elif key == "input_cost_per_character":
                tiers.setdefault("default", {})["per_1m_characters"] = _money(value, where, key)
            else:
                skipped.append(key)
            continue
        ours, tier, threshold = target
        if threshold is not None:
            thresholds.add(threshold)
        tiers.setdefault(tier, {})[ours] = _money(value, where, key)
    if len(thresholds) > 1:
        # Two long-context tiers do not fit one row; keep the base rates, say what was left out.
        for prices in tiers.values():
            for k in [k for k in prices if k.startswith("long_context_")]:
                del prices[k]
        skipped.append(f"long-context tiers above {sorted(thresholds)} tokens")
    elif thresholds:
        (threshold,) = thresholds
        for prices in tiers.values():
            if any(k.startswith("long_context_") for k in prices):
                prices["long_context_threshold"] = Decimal(threshold)
    rows: list[PriceRow] = []
    for tier in TIERS:
        found = tiers.get(tier)
        if not found:
            continue
        prices = found
        if tier != "default":
            # A tier row carries what the tier prices; other token kinds are billed as standard.
            prices = {**{k: v for k, v in tiers.get("default", {}).items() if k in _TIER_INHERITED}, **prices}
        threshold_value = prices.pop("long_context_threshold", None)
        fields: dict[str, Any] = dict(prices)
        if threshold_value is not None:
            fields["long_context_threshold"] = int(threshold_value)
        if not _valid(fields):
            skipped.append(f"{tier} tier (incomplete long-context rates)")
            continue
        rows.append(_row(name, tier, UNDATED, fields, source=source, today=today))
    return ForeignModel(name=name, names=(name,), rows=tuple(rows), skipped=tuple(sorted(set(skipped))))


# Token kinds a tier row takes from the standard row when the source gives no tier rate for them.
_TIER_INHERITED = frozenset({"per_minute", "per_1m_characters"})


def _litellm_field(key: str) -> tuple[str, Tier, int | None] | None:
    """``output_cost_per_token_above_272k_tokens_flex`` → (long_context_output_per_mtok, flex, 272000)."""
    long = _LITELLM_LONG.match(key)
    if long is not None:
        base = _LITELLM_TOKEN_FIELDS.get(long["stem"])
        if base is None or not base.endswith("_per_mtok") or "audio" in base or "image" in base:
            return None
        tier = _LITELLM_TIER_SUFFIXES.get(long["tier"] or "", "default")
        return f"long_context_{base}", tier, int(long["k"]) * 1000
    for suffix, tier in _LITELLM_TIER_SUFFIXES.items():
        if key.endswith(suffix) and key[: -len(suffix)] in _LITELLM_TOKEN_FIELDS:
            return _LITELLM_TOKEN_FIELDS[key[: -len(suffix)]], tier, None
    if key in _LITELLM_TOKEN_FIELDS:
        return _LITELLM_TOKEN_FIELDS[key], "default", None
    return None


# --- genai-prices -----------------------------------------------------------------------------------


def parse_genai_prices(raw: bytes, *, origin: str, today: date) -> ForeignPrices:
    """genai-prices' data (the provider list its ``UpdatePrices`` fetches): dated, tiered, with variants."""
    doc = _load_json(raw, origin, "genai-prices")
    if not isinstance(doc, list) or not all(isinstance(p, dict) for p in doc):
        raise PriceDataError(f"{origin}: expected a JSON array of providers (genai-prices data format)")
    provider = next((p for p in doc if p.get("id") == "openai"), None)
    if provider is None:
        raise PriceDataError(f"{origin}: no provider with id 'openai'; is this genai-prices' data?")
    raw_models = provider.get("models")
    if not isinstance(raw_models, list):
        raise PriceDataError(f"{origin}: provider 'openai': 'models' must be an array")
    source = f"genai-prices data ({origin}), imported {today.isoformat()}"
    models: list[ForeignModel] = []
    ignored: list[tuple[str, str]] = []
    for i, item in enumerate(raw_models):
        where = f"{origin}: openai model #{i + 1}"
        if not isinstance(item, dict):
            raise PriceDataError(f"{where}: must be an object")
        name = _clean_name(item.get("id"))
        if name is None:
            raise PriceDataError(f"{where}: 'id' must be a model name, got {item.get('id')!r}")
        where = f"{origin}: openai model {name!r}"
        equals, prefixes = _gp_match(item.get("match"), where)
        model = _gp_model(name, item, where=where, source=source, today=today)
        if not model.rows:
            ignored.append((name, "no token price (" + (", ".join(model.skipped) or "free") + ")"))
            continue
        names = (name, *[n for n in equals if n != name])
        models.append(
            ForeignModel(name, names, tuple(prefixes), model.rows, model.skipped),
        )
    return ForeignPrices("genai-prices", origin, tuple(models), tuple(ignored))


def _gp_match(clause: object, where: str) -> tuple[list[str], list[str]]:
    """The exact names and the prefixes a match clause accepts (other clause kinds are not names)."""
    equals: list[str] = []
    prefixes: list[str] = []
    for c in _gp_clauses(clause, where, depth=0):
        if "equals" in c and (name := _clean_name(c["equals"])) is not None:
            equals.append(name)
        elif "starts_with" in c and (prefix := _clean_name(c["starts_with"])) is not None:
            prefixes.append(prefix)
    return list(dict.fromkeys(equals)), list(dict.fromkeys(prefixes))


def _gp_clauses(clause: object, where: str, depth: int) -> Iterator[Mapping[str, Any]]:
    if depth > 20:
        raise PriceDataError(f"{where}: 'match' is nested too deeply")
    if not isinstance(clause, dict):
        raise PriceDataError(f"{where}: 'match' must be an object, got {clause!r}")
    yield clause
    for key in ("or", "or_"):
        children = clause.get(key)
        if isinstance(children, list):
            for child in children:
                yield from _gp_clauses(child, where, depth + 1)


def _gp_model(name: str, item: Mapping[str, Any], *, where: str, source: str, today: date) -> ForeignModel:
    skipped: set[str] = set()
    base: list[tuple[date | None, dict[str, Any]]] = []  # (start, our fields), in the source's order
    prices = item.get("prices")
    if isinstance(prices, dict):
        base.append((None, dict(prices)))
    elif isinstance(prices, list):
        for j, cond in enumerate(prices):
            if not isinstance(cond, dict) or not isinstance(cond.get("prices"), dict):
                raise PriceDataError(f"{where}: prices[{j}] must be an object with 'prices'")
            start = _gp_start(cond.get("constraint"), f"{where}: prices[{j}]", skipped)
            if start is not False:
                base.append((start, dict(cond["prices"])))
    else:
        raise PriceDataError(f"{where}: 'prices' must be an object or an array")
    variants: list[tuple[Tier, date | None, dict[str, Any]]] = []
    for j, variant in enumerate(item.get("price_variants") or []):
        at = f"{where}: price_variants[{j}]"
        if not isinstance(variant, dict) or not isinstance(variant.get("when"), dict):
            raise PriceDataError(f"{at}: must be an object with 'when' and 'prices'")
        when = variant["when"]
        tier = _GP_VARIANTS.get(next(iter(when.items()))) if len(when) == 1 else None
        if tier is None:
            skipped.add(f"variant {json.dumps(when, default=str)}")
            continue
        start = _gp_start(variant.get("constraint"), at, skipped)
        if start is False:
            continue
        prices_j = variant.get("prices") or {}
        if not isinstance(prices_j, dict):
            raise PriceDataError(f"{at}: 'prices' must be an object")
        variants.append((tier, start, dict(prices_j)))
    rows: list[PriceRow] = []
    for tier in TIERS:
        for start, raw_prices in _gp_timeline(base, [(s, f) for t, s, f in variants if t == tier], tier):
            fields = _gp_prices(raw_prices, where, skipped)
            if _valid(fields):
                rows.append(_row(name, tier, start or UNDATED, fields, source=source, today=today))
    return ForeignModel(name=name, names=(name,), rows=tuple(rows), skipped=tuple(sorted(skipped)))


def _gp_timeline(
    base: list[tuple[date | None, dict[str, Any]]],
    variants: list[tuple[date | None, dict[str, Any]]],
    tier: Tier,
) -> list[tuple[date | None, dict[str, Any]]]:
    """The tier's prices at each date one of its inputs changes, as genai-prices resolves them.

    The standard price in force is the last active one (the first when none is); a variant's keys
    override it while the variant is active, the first listed variant winning. A tier other than
    default exists only while a variant for it is active.
    """
    starts = sorted({s for s, _ in base if s is not None} | {s for s, _ in variants if s is not None})
    out: list[tuple[date | None, dict[str, Any]]] = []
    for day in [None, *starts]:
        standard = base[0][1] if base else {}
        for start, fields in reversed(base):
            if start is None or (day is not None and start <= day):
                standard = fields
                break
        active = [f for s, f in variants if s is None or (day is not None and s <= day)]
        if tier != "default" and not active:
            continue
        merged = dict(standard)
        for fields in reversed(active):  # the first listed variant wins each key, tiers and all
            merged.update({k: v for k, v in fields.items() if v is not None})
        if not out or out[-1][1] != merged:
            out.append((day, merged))
    return out


def _gp_start(constraint: object, where: str, skipped: set[str]) -> date | Literal[False] | None:
    """The start date of a constraint; None when there is none; False when it is not a date."""
    if constraint is None:
        return None
    if isinstance(constraint, dict) and "start_date" in constraint:
        try:
            return date.fromisoformat(str(constraint["start_date"]))
        except ValueError:
            raise PriceDataError(f"{where}: 'start_date' must be an ISO date") from None
    skipped.add("time-of-day prices")
    return False


def _gp_prices(prices: Mapping[str, Any], where: str, skipped: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in prices.items():
        if value is None:
            continue
        ours = _GP_TOKEN_FIELDS.get(key)
        if ours is None:
            if key == "input_mchars":
                out["per_1m_characters"] = _money(value, where, key, Decimal(1))
            elif key in ("audio_hours", "input_audio_hours"):
                out["per_minute"] = _money(value, where, key, Decimal(1) / Decimal(60))
            else:
                skipped.add(key)
            continue
        if isinstance(value, dict):
            base = _money(value.get("base"), where, f"{key}.base", Decimal(1))
            tiers = value.get("tiers")
            if not isinstance(tiers, list) or not all(isinstance(t, dict) for t in tiers):
                raise PriceDataError(f"{where}: {key!r}.tiers must be an array of {{start, price}}")
            out[ours] = base
            if len(tiers) == 1 and not ours.startswith(("input_audio", "cached_input_audio", "output_audio")):
                threshold = tiers[0].get("start")
                if isinstance(threshold, bool) or not isinstance(threshold, Decimal | int):
                    raise PriceDataError(f"{where}: {key!r}.tiers[0].start must be an integer")
                if "image" not in ours:
                    out["long_context_threshold"] = int(threshold)
                    out[f"long_context_{ours}"] = _money(
                        tiers[0].get("price"), where, f"{key}.tiers[0]", Decimal(1)
                    )
                    continue
            skipped.add(f"{key} tiers")
            continue
        out[ours] = _money(value, where, key, Decimal(1))
    return out
