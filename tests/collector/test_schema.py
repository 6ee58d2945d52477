"""The one column spec agrees with the table the migrations build, and with what it generates."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from spendscope.collector.normalize import normalize
from spendscope.collector.otlp import SpanData
from spendscope.collector.schema import (
    BATCH_SCHEMA,
    COLUMNS,
    DIMENSIONS,
    ROW_FIELDS,
    TOKEN_FIELDS,
    create_table_sql,
)
from spendscope.collector.store import Store

pytestmark = pytest.mark.server


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    rows = con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(name, kind, nullable == "NO") for name, kind, nullable in rows]


def test_the_migrated_calls_table_is_the_spec(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.duckdb"))
    store.migrate()
    con = store.connection
    con.execute(create_table_sql("calls_from_spec"))
    migrated, generated = _columns(con, "calls"), _columns(con, "calls_from_spec")
    assert migrated == generated
    assert [name for name, _, _ in migrated] == [c.name for c in COLUMNS]
    store.close()


def test_the_batch_is_the_row_then_the_price() -> None:
    # rows_to_arrow zips a row's values and then the pricer's into the batch fields, in this order.
    span_fields = [c.batch_field for c in COLUMNS if c.origin == "span"]
    price_fields = [c.batch_field for c in COLUMNS if c.origin == "price"]
    assert BATCH_SCHEMA.names == span_fields + price_fields
    assert list(ROW_FIELDS) == span_fields


def test_every_span_column_is_filled_by_normalize() -> None:
    # A span carrying one value for every attribute the spec names: no span column stays empty
    # except those derived from what this span lacks (tags) or from the span's own fields.
    sample = {"str": "x", "tokens": 3, "count": 3, "int32": 200, "float": 0.5, "bool": True}
    attrs = {c.attributes[0]: sample[c.coerce or "str"] for c in COLUMNS if c.attributes}
    span = SpanData(b"\1" * 16, b"\2" * 8, "chat x", 10**18, 10**18 + 5, False, attrs, {"service.name": "s"})
    row = normalize(span)
    assert row is not None
    empty = {name for name, value in zip(ROW_FIELDS, row, strict=True) if value is None}
    assert empty == {"tags"}


def test_roles() -> None:
    assert TOKEN_FIELDS == (
        "input_tokens",
        "cached_input_tokens",
        "cache_write_input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "input_audio_tokens",
        "output_audio_tokens",
    )
    assert {"model", "project", "user_id", "feature", "service"} <= set(DIMENSIONS)
