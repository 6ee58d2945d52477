"""Reading and validating price data: the bundled TOML file and the user's override rows.

Every error names the file, the row and the key, so a bad edit is found in seconds.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, cast

from spendscope.pricing.model import MONEY_FIELDS, TIERS, ImagePrice, PriceRow, Tier

__all__ = [
    "DEFAULT_DATA_FILE",
    "Alias",
    "PriceData",
    "PriceDataError",
    "load_bundled",
    "parse_data",
    "parse_overrides",
]

DEFAULT_DATA_FILE = "openai.toml"
SCHEMA_VERSION = 1

_ROW_KEYS = frozenset(
    {
        "model",
        "tier",
        "valid_from",
        "source",
        "checked",
        "note",
        "long_context_threshold",
        "per_image",
        "default_image",
        *MONEY_FIELDS,
    }
)
_ALIAS_KEYS = frozenset({"alias", "model", "source", "note"})
# Long-context rates only make sense with a threshold, and the reverse.
_LONG_CONTEXT_FIELDS = tuple(f for f in MONEY_FIELDS if f.startswith("long_context_"))


class PriceDataError(ValueError):
    """The price data (bundled file or overrides) is invalid; the message says where."""


@dataclass(frozen=True, slots=True)
class Alias:
    """Another name for a priced model (renamed models, Azure spellings, deployment names)."""

    alias: str
    model: str
    origin: str = "openai"


@dataclass(frozen=True, slots=True)
class PriceData:
    rows: tuple[PriceRow, ...]
    aliases: tuple[Alias, ...]


def load_bundled(name: str = DEFAULT_DATA_FILE) -> tuple[PriceData, bytes]:
    """Parse and validate a data file shipped in ``spendscope/pricing/data``; returns its bytes too."""
    raw = resources.files("spendscope.pricing").joinpath("data", name).read_bytes()
    return parse_data(raw, where=f"spendscope/pricing/data/{name}"), raw


def parse_data(raw: bytes, *, where: str, origin: str = "openai") -> PriceData:
    """Parse and validate a price file (the bundled table or an extra table); rows get ``origin``."""
    try:
        doc = tomllib.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PriceDataError(f"{where}: not valid TOML: {exc}") from exc
    unknown = set(doc) - {"schema", "price", "alias"}
    if unknown:
        raise PriceDataError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
    if doc.get("schema") != SCHEMA_VERSION:
        raise PriceDataError(f"{where}: schema must be {SCHEMA_VERSION}, got {doc.get('schema')!r}")
    rows = tuple(
        _parse_row(item, where=f"{where}: [[price]] #{i + 1}", origin=origin)
        for i, item in enumerate(_table_list(doc.get("price", []), where, "price"))
    )
    aliases = tuple(
        _parse_alias(item, where=f"{where}: [[alias]] #{i + 1}", origin=origin)
        for i, item in enumerate(_table_list(doc.get("alias", []), where, "alias"))
    )
    _check_unique(rows, aliases, where)
    return PriceData(rows=rows, aliases=aliases)


def parse_overrides(items: Iterable[Mapping[str, Any]], *, where: str = "pricing.overrides") -> PriceData:
    """Override rows from the collector's config: the same keys as data rows, or an ``alias`` entry.

    ``source`` defaults to "config override" and ``checked`` to ``valid_from``.
    """
    rows: list[PriceRow] = []
    aliases: list[Alias] = []
    for i, item in enumerate(items):
        at = f"{where} #{i + 1}"
        if not isinstance(item, Mapping):
            raise PriceDataError(f"{at}: expected a table, got {type(item).__name__}")
        if "alias" in item:
            aliases.append(_parse_alias(item, where=at, origin="override"))
            continue
        filled = dict(item)
        filled.setdefault("source", "config override")
        if "valid_from" in filled:
            filled.setdefault("checked", filled["valid_from"])
        rows.append(_parse_row(filled, where=at, origin="override"))
    _check_unique(tuple(rows), tuple(aliases), where)
    return PriceData(rows=tuple(rows), aliases=tuple(aliases))


def _table_list(value: object, where: str, key: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PriceDataError(f"{where}: {key!r} must be an array of tables ([[{key}]])")
    return cast(list[Mapping[str, Any]], value)


def _check_unique(rows: tuple[PriceRow, ...], aliases: tuple[Alias, ...], where: str) -> None:
    seen: set[tuple[str, str, date]] = set()
    for row in rows:
        key = (row.model, row.tier, row.valid_from)
        if key in seen:
            raise PriceDataError(
                f"{where}: two rows for model={row.model!r} tier={row.tier!r} valid_from={row.valid_from}"
            )
        seen.add(key)
    names: set[str] = set()
    for alias in aliases:
        if alias.alias in names:
            raise PriceDataError(f"{where}: alias {alias.alias!r} defined twice")
        names.add(alias.alias)


def _parse_alias(item: Mapping[str, Any], *, where: str, origin: str) -> Alias:
    unknown = set(item) - _ALIAS_KEYS
    if unknown:
        raise PriceDataError(f"{where}: unknown key(s) {sorted(unknown)}")
    return Alias(
        alias=_name(item, "alias", where),
        model=_name(item, "model", where),
        origin=origin,
    )


def _parse_row(item: Mapping[str, Any], *, where: str, origin: str) -> PriceRow:
    unknown = set(item) - _ROW_KEYS
    if unknown:
        raise PriceDataError(f"{where}: unknown key(s) {sorted(unknown)}")
    model = _name(item, "model", where)
    where = f"{where} (model {model!r})"
    tier = item.get("tier", "default")
    if tier not in TIERS:
        raise PriceDataError(f"{where}: key 'tier' must be one of {list(TIERS)}, got {tier!r}")
    money = {name: _money(item[name], where, name) for name in MONEY_FIELDS if name in item}
    per_image = _per_image(item.get("per_image"), where)
    if not money and not per_image:
        raise PriceDataError(f"{where}: a row needs at least one price")
    threshold = item.get("long_context_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0
    ):
        raise PriceDataError(f"{where}: key 'long_context_threshold' must be a positive integer")
    has_long_rates = any(f in money for f in _LONG_CONTEXT_FIELDS)
    if (threshold is None) == has_long_rates:
        raise PriceDataError(
            f"{where}: 'long_context_threshold' and the long_context_* rates must be given together"
        )
    default_image = item.get("default_image")
    if per_image and default_image is None:
        raise PriceDataError(f"{where}: key 'default_image' is required with 'per_image'")
    if default_image is not None and default_image not in {f"{p.quality}:{p.size}" for p in per_image}:
        raise PriceDataError(f"{where}: key 'default_image' must name one of the 'per_image' keys")
    note = item.get("note")
    if note is not None and not isinstance(note, str):
        raise PriceDataError(f"{where}: key 'note' must be a string")
    return PriceRow(
        model=model,
        tier=cast(Tier, tier),
        valid_from=_date(item, "valid_from", where),
        source=_text(item, "source", where),
        checked=_date(item, "checked", where),
        origin=origin,
        note=note,
        long_context_threshold=threshold,
        per_image=per_image,
        default_image=default_image,
        **money,
    )


def _name(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise PriceDataError(f"{where}: key {key!r} must be a non-empty string without surrounding spaces")
    return value.lower()


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PriceDataError(f"{where}: key {key!r} is required (a non-empty string)")
    return value


def _date(item: Mapping[str, Any], key: str, where: str) -> date:
    value = item.get(key)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PriceDataError(f"{where}: key {key!r} is required as a date (YYYY-MM-DD), got {value!r}")


def _money(value: object, where: str, key: str) -> Decimal:
    if isinstance(value, bool):
        raise PriceDataError(f"{where}: key {key!r} must be a decimal number, got {value!r}")
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, int | str):
            result = Decimal(value)
        elif isinstance(value, float):
            # Config files parsed without parse_float=Decimal give floats; their repr is the typed text.
            result = Decimal(repr(value))
        else:
            raise PriceDataError(f"{where}: key {key!r} must be a decimal number, got {type(value).__name__}")
    except InvalidOperation as exc:
        raise PriceDataError(f"{where}: key {key!r} is not a decimal number: {value!r}") from exc
    if not result.is_finite() or result < 0:
        raise PriceDataError(f"{where}: key {key!r} must be a finite number >= 0, got {value!r}")
    return result


def _per_image(value: object, where: str) -> tuple[ImagePrice, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise PriceDataError(f"{where}: key 'per_image' must be a table of \"quality:size\" = price")
    prices: list[ImagePrice] = []
    for key, price in value.items():
        quality, sep, size = str(key).partition(":")
        if not sep or not quality or not size:
            raise PriceDataError(f'{where}: per_image key {key!r} must look like "quality:size"')
        prices.append(
            ImagePrice(
                quality=quality.lower(), size=size.lower(), price=_money(price, where, f"per_image.{key}")
            )
        )
    return tuple(prices)
