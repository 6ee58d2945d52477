"""The one way a price table is built from configuration: bundled rows, overrides, extra tables.

The collector (at start and in each decode worker), ``spendscope pricing list`` and the reprice path
all build their table with :func:`build_price_table`, from one :class:`PriceSources` that is read
once (files included) and can be pickled to the decode workers, so every process prices alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spendscope.pricing.loading import PriceDataError
from spendscope.pricing.table import PriceTable

__all__ = [
    "MAX_EXTRA_TABLE_BYTES",
    "ExtraTableRef",
    "PriceSources",
    "build_price_table",
    "check_extra_tables",
    "extra_table_refs",
]

# The bundled table is under 100 KB; an extra table 160 times that is a mistake, not a price list.
MAX_EXTRA_TABLE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExtraTableRef:
    """One entry of ``[pricing] extra_tables``: the name as written and the file it means."""

    label: str
    path: str


@dataclass(frozen=True, slots=True)
class PriceSources:
    """Everything a price table is built from, with the extra tables' bytes already read."""

    overrides: tuple[Mapping[str, Any], ...] = ()
    extra_tables: tuple[tuple[str, bytes], ...] = ()  # (label, file content), in config order

    @classmethod
    def load(
        cls, overrides: Sequence[Mapping[str, Any]] = (), extra_tables: Sequence[ExtraTableRef] = ()
    ) -> PriceSources:
        """Read the extra tables' files; a missing, unreadable or oversized file names itself."""
        read: list[tuple[str, bytes]] = []
        for ref in extra_tables:
            try:
                with open(ref.path, "rb") as fh:
                    raw = fh.read(MAX_EXTRA_TABLE_BYTES + 1)
            except OSError as exc:
                raise PriceDataError(
                    f"pricing.extra_tables: cannot read {ref.label!r} ({ref.path}): {exc.strerror or exc}"
                ) from None
            if len(raw) > MAX_EXTRA_TABLE_BYTES:
                raise PriceDataError(
                    f"pricing.extra_tables: {ref.label!r} is larger than {MAX_EXTRA_TABLE_BYTES} bytes"
                )
            read.append((ref.label, raw))
        return cls(overrides=tuple(dict(o) for o in overrides), extra_tables=tuple(read))


def build_price_table(sources: PriceSources | None = None) -> PriceTable:
    """The bundled table with the overrides on top and the extra tables below, all validated."""
    table = PriceTable.default()
    if sources is None:
        return table
    if sources.overrides:
        table = table.with_overrides(sources.overrides)
    for label, raw in sources.extra_tables:
        table = table.with_extra_table(label, raw)
    return table


def check_extra_tables(value: object) -> tuple[str, ...]:
    """The file names of ``[pricing] extra_tables``; ``ValueError`` says what the list must be."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of file names")
    twice = next((name for i, name in enumerate(value) if name in value[:i]), None)
    if twice is not None:
        raise ValueError(f"lists {twice!r} twice")
    return tuple(value)


def extra_table_refs(value: object, config_path: str | None) -> tuple[ExtraTableRef, ...]:
    """``[pricing] extra_tables`` checked: a list of file names, relative to the config file's folder."""
    try:
        names = check_extra_tables(value)
    except ValueError as exc:
        raise PriceDataError(
            f"{config_path or '<config>'}: pricing.extra_tables {exc}, got {value!r}"
        ) from None
    base = Path(config_path).resolve().parent if config_path else Path.cwd()
    return tuple(ExtraTableRef(label=name, path=str(base / Path(name).expanduser())) for name in names)
