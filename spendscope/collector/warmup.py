"""Start-up warm-up: run the ingest path once on a sample span before the first real request.

The first request otherwise pays for lazy imports (pyarrow pulls in pandas on its first
conversion of Python lists, Arrow's group-by engine, the OTLP response classes, anyio's backend)
and the first DuckDB Arrow scan: about half a second of CPU, taken with the GIL held while the
first exporters wait. Nothing here is stored: the sample insert is rolled back.
"""

from __future__ import annotations

import logging
import time

import duckdb
import pyarrow as pa
import pyarrow.acero
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spendscope import semconv as sc
from spendscope.collector.ingest import build_batch, insert_batch
from spendscope.collector.normalize import rows_from_protobuf
from spendscope.collector.otlp import encode_response_json, encode_response_protobuf
from spendscope.collector.pricer import Pricer

__all__ = ["sample_request", "warm_receiver", "warm_store", "warm_up"]

log = logging.getLogger("spendscope.collector.warmup")


def sample_request() -> bytes:
    """An OTLP protobuf export of one priced chat span, as our SDK sends it."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key=sc.SERVICE_NAME, value=AnyValue(string_value="warmup")))
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x01" * 8, "chat gpt-4o-mini"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    attrs: dict[str, str | int] = {
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        sc.HTTP_RESPONSE_STATUS_CODE: 200,
    }
    for key, v in attrs.items():
        value = AnyValue(string_value=v) if isinstance(v, str) else AnyValue(int_value=v)
        span.attributes.append(KeyValue(key=key, value=value))
    return bytes(req.SerializeToString())


def warm_receiver(pricer: Pricer) -> pa.Table | None:
    """Decode, price and convert the sample as a request would (also in a decode worker)."""
    batch = build_batch(rows_from_protobuf(sample_request()), pricer)
    encode_response_protobuf(0, "")
    encode_response_json(0, "")
    return batch.table


def warm_store(con: duckdb.DuckDBPyConnection, table: pa.Table | None) -> None:
    """Run the writer's steps on ``table`` in a transaction that is rolled back."""
    if table is None:
        return
    starts = table.column("start_ns")
    con.execute("BEGIN TRANSACTION")
    try:
        insert_batch(con, table, starts[0].as_py(), starts[-1].as_py())
    finally:
        con.execute("ROLLBACK")


def warm_up(pricer: Pricer, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """The receiver's steps, and the writer's too given its connection; never raises."""
    try:
        table = warm_receiver(pricer)
        if con is not None:
            warm_store(con, table)
    except Exception:  # only costs speed: the first request then pays for it
        log.exception("ingest warm-up failed")
