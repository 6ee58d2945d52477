"""The ``calls`` table, declared once: every column with its types, sources and roles.

Everything that knows a column reads it from :data:`COLUMNS`: the normalizer (which span attributes
fill it, in order of precedence, and how their values are coerced), the row layout and the Arrow
schema of an ingest batch, the insert, the token and dimension sets of the query side, and the DDL
of any other store of calls (the lake). The local DuckDB table itself is built by the numbered
migrations; a test checks that they and this declaration agree, column for column.

A column comes from one of three places (``origin``):

- ``span``: the normalizer fills it from the span (its attributes, or the span's own fields);
- ``price``: the pricer fills it;
- ``insert``: the insert computes it in SQL from other batch fields (``expr``).

Pure data: no I/O, nothing at import but building these tuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from spendscope import semconv as sc

__all__ = [
    "BATCH_SCHEMA",
    "COLUMNS",
    "DIMENSIONS",
    "MAX_TAGS",
    "MAX_TEXT",
    "MAX_TOKENS",
    "MONEY",
    "ROW_FIELDS",
    "ROW_INDEX",
    "TOKEN_FIELDS",
    "Coerce",
    "Column",
    "create_table_sql",
    "insert_sql",
]

# How a raw attribute value becomes the column's value (see spendscope.collector.normalize):
# str: any scalar as text (lists joined with commas, bytes as hex; empty is absent), at most
# MAX_TEXT bytes; tokens: a token count in [0, 2^32), so that any sum of them stays exact; count:
# an integer in [0, 2^62); int32: a 32-bit integer; float: a finite number; bool: a boolean.
Coerce = Literal["str", "tokens", "count", "int32", "float", "bool"]
MAX_TEXT = 4096  # bytes of any text value (dimensions, ids, names, tag keys and values)
MAX_TAGS = 1000  # tags on one span
MAX_TOKENS = 1 << 32  # tokens of one kind in one call; beyond this no real call goes
Origin = Literal["span", "price", "insert"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of ``calls``.

    ``field`` is its name in an ingest batch when that differs (times travel as integer
    nanoseconds, cost as integer picodollars); ``arrow`` is the batch field's type, ``expr`` the
    insert's SQL over the batch row ``b`` (default ``b.<field>``). ``attributes`` are the span
    attributes that fill a ``span`` column, first present wins; a column derived from other
    values has none (see ``normalize``).
    """

    name: str
    sql_type: str
    doc: str = ""
    origin: Origin = "span"
    arrow: pa.DataType | None = None
    field: str | None = None
    expr: str | None = None
    attributes: tuple[str, ...] = ()
    coerce: Coerce | None = None
    not_null: bool = False
    token: bool = False  # a token count: summed by the query side, priced by the pricer
    dimension: bool = False  # a value calls are grouped and filtered by (bounded in size)
    money: bool = False  # USD, exact decimal

    @property
    def batch_field(self) -> str:
        return self.field or self.name

    @property
    def insert_expr(self) -> str:
        return self.expr or f"b.{self.batch_field}"


_S, _I64, _I32, _F, _B = pa.string(), pa.int64(), pa.int32(), pa.float64(), pa.bool_()


def _str(name: str, *attributes: str, doc: str = "", dimension: bool = False) -> Column:
    return Column(name, "VARCHAR", doc, arrow=_S, attributes=attributes, coerce="str", dimension=dimension)


def _count(name: str, *attributes: str, doc: str = "", token: bool = False) -> Column:
    coerce: Coerce = "tokens" if token else "count"
    return Column(name, "BIGINT", doc, arrow=_I64, attributes=attributes, coerce=coerce, token=token)


def _float(name: str, attribute: str, doc: str = "") -> Column:
    return Column(name, "DOUBLE", doc, arrow=_F, attributes=(attribute,), coerce="float")


COLUMNS: tuple[Column, ...] = (
    Column("trace_id", "VARCHAR", "lower-case hex", arrow=_S, not_null=True),
    Column("span_id", "VARCHAR", "lower-case hex", arrow=_S, not_null=True),
    Column(
        "start_time",
        "TIMESTAMPTZ",
        arrow=_I64,
        field="start_ns",
        expr="make_timestamp_ns(b.start_ns)::TIMESTAMPTZ",
        not_null=True,
    ),
    Column(
        "end_time", "TIMESTAMPTZ", arrow=_I64, field="end_ns", expr="make_timestamp_ns(b.end_ns)::TIMESTAMPTZ"
    ),
    Column(
        "day",
        "DATE",
        "UTC day of start_time",
        origin="insert",
        expr="make_timestamp_ns(b.start_ns)::DATE",
        not_null=True,
    ),
    Column("service", "VARCHAR", "resource service.name", arrow=_S, dimension=True),
    Column(
        "provider",
        "VARCHAR",
        arrow=_S,
        attributes=(sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM),
        coerce="str",
        dimension=True,
    ),
    Column(
        "operation",
        "VARCHAR",
        arrow=_S,
        attributes=(sc.GEN_AI_OPERATION_NAME, "llm.request.type"),  # the second is OpenLLMetry's
        coerce="str",
        dimension=True,
    ),
    _str(
        "api",
        sc.OPENAI_API_TYPE,
        doc="chat_completions, responses, embeddings, ... (else derived from the operation)",
        dimension=True,
    ),
    Column("span_name", "VARCHAR", arrow=_S),
    _str("server_address", sc.SERVER_ADDRESS),
    _str("request_model", sc.GEN_AI_REQUEST_MODEL, dimension=True),
    _str("response_model", sc.GEN_AI_RESPONSE_MODEL, dimension=True),
    Column(
        "model",
        "VARCHAR",
        "response model when known, else request model",
        arrow=_S,
        not_null=True,
        dimension=True,
    ),
    _str("project", sc.OPENAI_PROJECT, dimension=True),
    _str("organization", sc.OPENAI_ORGANIZATION, dimension=True),
    _str("user_id", sc.USER, "gen_ai.request.user", "user.id", dimension=True),
    _str("feature", sc.FEATURE, dimension=True),
    Column(
        "tags",
        "MAP(VARCHAR, VARCHAR)",
        f"from {sc.TAG_PREFIX}<key> attributes",
        arrow=pa.map_(pa.string(), pa.string()),
    ),
    Column(
        "stream",
        "BOOLEAN",
        arrow=_B,
        attributes=(sc.GEN_AI_REQUEST_STREAM, "llm.is_streaming"),
        coerce="bool",
    ),
    Column("stream_completed", "BOOLEAN", arrow=_B, attributes=(sc.STREAM_COMPLETED,), coerce="bool"),
    Column(
        "status_code",
        "INTEGER",
        arrow=_I32,
        attributes=(sc.HTTP_RESPONSE_STATUS_CODE, "http.status_code"),
        coerce="int32",
        dimension=True,
    ),
    Column("is_error", "BOOLEAN", "status >= 400 or span status ERROR", arrow=_B, not_null=True),
    _str("error_type", sc.ERROR_TYPE, dimension=True),
    Column("duration_s", "DOUBLE", origin="insert", expr="(b.end_ns - b.start_ns) / 1e9"),
    _float("ttfc_s", sc.GEN_AI_TIME_TO_FIRST_CHUNK),
    _count(
        "input_tokens",
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_PROMPT_TOKENS,
        doc="includes cached and cache-write input",
        token=True,
    ),
    _count(
        "cached_input_tokens",
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        "gen_ai.usage.cache_read_input_tokens",
        token=True,
    ),
    _count(
        "cache_write_input_tokens",
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        "gen_ai.usage.cache_creation_input_tokens",
        token=True,
    ),
    _count(
        "output_tokens",
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.GEN_AI_USAGE_COMPLETION_TOKENS,
        doc="includes reasoning",
        token=True,
    ),
    _count(
        "reasoning_tokens",
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        "gen_ai.usage.reasoning_tokens",
        token=True,
    ),
    _count("input_audio_tokens", sc.USAGE_INPUT_AUDIO_TOKENS, token=True),
    _count("output_audio_tokens", sc.USAGE_OUTPUT_AUDIO_TOKENS, token=True),
    _str(
        "service_tier",
        sc.OPENAI_RESPONSE_SERVICE_TIER,
        "gen_ai.openai.response.service_tier",
        sc.OPENAI_REQUEST_SERVICE_TIER,
        "gen_ai.openai.request.service_tier",
        dimension=True,
    ),
    Column("batch", "BOOLEAN", arrow=_B, attributes=(sc.BATCH,), coerce="bool", not_null=True),
    Column("attempt", "INTEGER", arrow=_I32, attributes=(sc.ATTEMPT,), coerce="int32"),
    _str("request_id", sc.OPENAI_REQUEST_ID),
    _str("response_id", sc.GEN_AI_RESPONSE_ID),
    _count("ratelimit_limit_requests", sc.RATELIMIT_LIMIT_REQUESTS),
    _count("ratelimit_remaining_requests", sc.RATELIMIT_REMAINING_REQUESTS),
    _count("ratelimit_limit_tokens", sc.RATELIMIT_LIMIT_TOKENS),
    _count("ratelimit_remaining_tokens", sc.RATELIMIT_REMAINING_TOKENS),
    _float("ratelimit_reset_requests_s", sc.RATELIMIT_RESET_REQUESTS_S),
    _float("ratelimit_reset_tokens_s", sc.RATELIMIT_RESET_TOKENS_S),
    _float("retry_after_s", sc.RETRY_AFTER_S),
    _str("usage_source", sc.USAGE_SOURCE),
    Column("price_id", "VARCHAR", origin="price", arrow=_S),
    Column("pricing_status", "VARCHAR", "priced | unpriced | free | no_usage", origin="price", arrow=_S),
    Column(
        "cost_usd",
        "DECIMAL(38, 12)",
        "NULL means unpriced; a failed attempt without usage costs 0",
        origin="price",
        arrow=_I64,
        field="cost_pico",
        expr="CAST(b.cost_pico AS DECIMAL(38, 0)) * 0.000000000001",
        money=True,
    ),
    Column("ingested_at", "TIMESTAMPTZ", origin="insert", expr="current_timestamp", not_null=True),
)

_SPAN_COLUMNS = tuple(c for c in COLUMNS if c.origin == "span")
_BATCH_COLUMNS = tuple(c for c in COLUMNS if c.origin != "insert")

# A normalized row is a tuple of the span columns' batch fields, in this order.
ROW_FIELDS: tuple[str, ...] = tuple(c.batch_field for c in _SPAN_COLUMNS)
ROW_INDEX: dict[str, int] = {name: i for i, name in enumerate(ROW_FIELDS)}
# An ingest batch: the row's fields, then the pricer's.
BATCH_SCHEMA = pa.schema([(c.batch_field, c.arrow) for c in _BATCH_COLUMNS])

TOKEN_FIELDS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.token)
DIMENSIONS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.dimension)
MONEY: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.money)


def insert_sql(table: str = "calls", source: str = "batch_in", where: str = "") -> str:
    """``INSERT INTO table (...) SELECT ... FROM source b [WHERE ...]``: an ingest batch as rows."""
    names = ", ".join(c.name for c in COLUMNS)
    exprs = ", ".join(c.insert_expr for c in COLUMNS)
    return f"INSERT INTO {table} ({names}) SELECT {exprs} FROM {source} b{f' WHERE {where}' if where else ''}"


def create_table_sql(table: str = "calls") -> str:
    """The DDL of a table of calls with exactly these columns (for stores other than the local file)."""
    cols = ",\n    ".join(f"{c.name} {c.sql_type}{' NOT NULL' if c.not_null else ''}" for c in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {cols}\n)"
