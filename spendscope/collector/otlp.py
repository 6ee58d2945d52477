"""OTLP/HTTP trace request decoding: protobuf and JSON into :class:`SpanData`, nothing else.

Pure functions. The protobuf path walks the upb message directly (``MessageToDict`` costs about 4×
as much) and keeps ids as bytes and times as integer nanoseconds; conversion to columns happens in
bulk later. A per-span problem (bad id in JSON, say) does not fail the request: the span carries a
``problem`` and normalization rejects it, so valid spans in the same request are kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any, Literal, NamedTuple, TypeVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spendscope.collector.fastpb import (
    AttributeCache,
    AttributeError_,
    Entry,
    PbDecodeError,
    parse_request,
    pb_value,
)
from spendscope.semconv import SERVICE_NAME

__all__ = [
    "DecodeError",
    "SpanData",
    "TooLargeError",
    "decode_json",
    "decode_protobuf",
    "decode_protobuf_generic",
    "decompress",
    "encode_response_json",
    "encode_response_protobuf",
    "walk_protobuf",
]

T = TypeVar("T")


class DecodeError(ValueError):
    """The request body is not a valid OTLP trace export request (answered with 400)."""


class TooLargeError(ValueError):
    """The body, compressed or after decompression, is over the limit (answered with 413)."""


class SpanData(NamedTuple):
    trace_id: bytes
    span_id: bytes
    name: str
    start_ns: int
    end_ns: int
    status_error: bool  # OTLP status code ERROR
    attributes: dict[str, Any]
    resource: dict[str, Any]
    problem: str | None = None  # set when the span could not be read; normalization rejects it


_STATUS_ERROR = 2
_SCALAR_KINDS = frozenset({"string_value", "int_value", "double_value", "bool_value", "bytes_value"})


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate or identity) without ever holding more than ``limit``.

    A gzip body may hold several members (RFC 1952); they are read whole, one after the other, and
    anything after the last member that is not one is an error, never silently dropped.
    """
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return body
    if enc == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise DecodeError(f"unsupported Content-Encoding {encoding!r} (gzip, deflate or identity)")
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        d = zlib.decompressobj(wbits)
        try:
            # max_length stops a decompression bomb before it is materialized.
            out = d.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise DecodeError(f"invalid {enc} body{' member' if parts else ''}: {exc}") from None
        size += len(out)
        if size > limit or d.unconsumed_tail:
            raise TooLargeError(f"decompressed body is over the {limit} byte limit")
        if not d.eof:
            raise DecodeError(f"truncated {enc} body")
        parts.append(out)
        rest = d.unused_data
        if not rest or enc != "gzip":
            break
    if rest:
        raise DecodeError(f"{len(rest)} bytes of trailing data after the {enc} body")
    return parts[0] if len(parts) == 1 else b"".join(parts)


# --- protobuf ---------------------------------------------------------------------------------


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        which = v.WhichOneof("value")
        if which in _SCALAR_KINDS:
            out[kv.key] = getattr(v, which)
        else:
            out[kv.key] = pb_value(v)
    return out


def decode_protobuf_generic(body: bytes) -> list[SpanData]:
    """The straightforward walk of the generated classes (reference for :func:`decode_protobuf`)."""
    try:
        req = ExportTraceServiceRequest.FromString(body)
    except PbDecodeError as exc:
        raise DecodeError(f"invalid protobuf ExportTraceServiceRequest: {exc}") from None
    except RecursionError:
        raise DecodeError("invalid protobuf ExportTraceServiceRequest: nested too deeply") from None
    out: list[SpanData] = []
    append = out.append
    for rs in req.resource_spans:
        resource = _pb_attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                append(
                    SpanData(
                        s.trace_id,
                        s.span_id,
                        s.name,
                        s.start_time_unix_nano,
                        s.end_time_unix_nano,
                        s.status.code == _STATUS_ERROR,
                        _pb_attrs(s.attributes),
                        resource,
                    )
                )
    return out


@cache
def _plain_cache() -> AttributeCache:
    return AttributeCache(lambda key, value: (0, None))


def decode_protobuf(body: bytes) -> list[SpanData]:
    """Parse an ``ExportTraceServiceRequest``; raise :class:`DecodeError` on anything malformed.

    Uses the attribute-as-bytes view of :mod:`spendscope.collector.fastpb`; an attribute that does
    not decode makes its span carry a ``problem`` instead of failing the whole request.
    """
    _, spans = walk_protobuf(body, _plain_cache(), None)
    return spans


# Given a span's ids, name, times, error flag, decoded attributes and service name: a result, or
# False to have the span decoded into a SpanData instead.
SpanHook = Callable[[bytes, bytes, str, int, int, bool, list[Entry], Any], "T | Literal[False]"]


def walk_protobuf(
    body: bytes, attributes: AttributeCache, hook: SpanHook[T] | None
) -> tuple[list[T], list[SpanData]]:
    """Walk a protobuf request once: what ``hook`` made of each span, and the other spans decoded.

    The hook lets a caller (normalization's fast path) turn most spans into its own result without
    a :class:`SpanData`; ``hook=None`` decodes every span.
    """
    try:
        req = parse_request(body)
    except PbDecodeError as exc:
        raise DecodeError(f"invalid protobuf ExportTraceServiceRequest: {exc}") from None
    made: list[T] = []
    out: list[SpanData] = []
    append = out.append
    for rs in req.resource_spans:
        try:
            resource = {e[0]: e[1] for e in attributes.entries(rs.resource.attributes)}
        except AttributeError_ as exc:
            raise DecodeError(f"invalid resource attributes: {exc}") from None
        service = resource.get(SERVICE_NAME)
        for ss in rs.scope_spans:
            for s in ss.spans:
                tid, sid = s.trace_id, s.span_id
                start, end = s.start_time_unix_nano, s.end_time_unix_nano
                error = s.status.code == _STATUS_ERROR
                try:
                    name = s.name.decode()
                except UnicodeDecodeError:
                    name = s.name.decode(errors="replace")
                    append(
                        SpanData(tid, sid, name, start, end, error, {}, resource, "span name is not UTF-8")
                    )
                    continue
                try:
                    entries = attributes.entries(s.attributes)
                except AttributeError_ as exc:
                    append(SpanData(tid, sid, name, start, end, error, {}, resource, str(exc)))
                    continue
                result = False if hook is None else hook(tid, sid, name, start, end, error, entries, service)
                if result is False:
                    attrs = {e[0]: e[1] for e in entries}
                    append(SpanData(tid, sid, name, start, end, error, attrs, resource))
                else:
                    made.append(result)
    return made, out


def encode_response_protobuf(rejected: int, message: str) -> bytes:
    resp = ExportTraceServiceResponse()
    if rejected or message:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message
    return bytes(resp.SerializeToString())


# --- JSON -------------------------------------------------------------------------------------


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    # The OTLP JSON mapping uses lowerCamelCase; receivers may also accept the proto field names.
    v = obj.get(camel)
    return obj.get(snake) if v is None else v


def _json_list(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    v = _get(obj, camel, snake)
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError(f"{where}.{camel}: expected an array")
    return v


def _json_value(v: Any, where: str) -> Any:
    if not isinstance(v, dict):
        raise DecodeError(f"{where}: expected an AnyValue object")
    for key, val in v.items():
        if key in ("stringValue", "string_value", "boolValue", "bool_value"):
            return val
        if key in ("intValue", "int_value"):
            # int64 is a decimal string in OTLP JSON; numbers are accepted too.
            try:
                return int(val)
            except (TypeError, ValueError):
                raise DecodeError(f"{where}.intValue: not an integer: {val!r}") from None
        if key in ("doubleValue", "double_value"):
            try:
                return float(val)
            except (TypeError, ValueError):
                raise DecodeError(f"{where}.doubleValue: not a number: {val!r}") from None
        if key in ("bytesValue", "bytes_value"):
            try:
                return base64.b64decode(val, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise DecodeError(f"{where}.bytesValue: not base64") from None
        if key in ("arrayValue", "array_value"):
            vals = val.get("values", []) if isinstance(val, dict) else None
            if not isinstance(vals, list):
                raise DecodeError(f"{where}.arrayValue.values: expected an array")
            return [_json_value(x, f"{where}[{i}]") for i, x in enumerate(vals)]
        if key in ("kvlistValue", "kvlist_value"):
            vals = val.get("values", []) if isinstance(val, dict) else None
            if not isinstance(vals, list):
                raise DecodeError(f"{where}.kvlistValue.values: expected an array")
            return _json_attrs(vals, where)
    return None


def _json_attrs(kvs: list[Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, kv in enumerate(kvs):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise DecodeError(f"{where}.attributes[{i}]: expected {{key, value}}")
        out[kv["key"]] = _json_value(kv.get("value", {}), f"{where}.attributes[{kv['key']}]")
    return out


def _json_id(v: Any, size: int, where: str) -> bytes:
    if v is None or v == "":
        return b""
    if not isinstance(v, str):
        raise DecodeError(f"{where}: expected a hex string")
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        raise DecodeError(f"{where}: not hex: {v[:40]!r}") from None
    if len(raw) != size:
        raise DecodeError(f"{where}: expected {size} bytes, got {len(raw)}")
    return raw


def _json_nanos(v: Any, where: str) -> int:
    if v is None:
        return 0
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise DecodeError(f"{where}: not an integer timestamp: {v!r}") from None
    if n < 0 or n >= 1 << 64:
        raise DecodeError(f"{where}: out of range")
    return n


def _json_span(s: Any, resource: dict[str, Any], where: str) -> SpanData:
    try:
        if not isinstance(s, dict):
            raise DecodeError(f"{where}: expected a span object")
        status = s.get("status") or {}
        code = status.get("code") if isinstance(status, dict) else None
        attrs = _json_attrs(_json_list(s, "attributes", "attributes", where), where)
        return SpanData(
            _json_id(_get(s, "traceId", "trace_id"), 16, f"{where}.traceId"),
            _json_id(_get(s, "spanId", "span_id"), 8, f"{where}.spanId"),
            str(s.get("name") or ""),
            _json_nanos(_get(s, "startTimeUnixNano", "start_time_unix_nano"), f"{where}.startTimeUnixNano"),
            _json_nanos(_get(s, "endTimeUnixNano", "end_time_unix_nano"), f"{where}.endTimeUnixNano"),
            code in (_STATUS_ERROR, "STATUS_CODE_ERROR"),
            attrs,
            resource,
        )
    except DecodeError as exc:
        # One unreadable span is rejected on its own; the rest of the request still counts.
        raw_ids = s if isinstance(s, dict) else {}
        tid, sid = _get(raw_ids, "traceId", "trace_id"), _get(raw_ids, "spanId", "span_id")
        return SpanData(
            _safe_hex(tid),
            _safe_hex(sid),
            str(raw_ids.get("name") or ""),
            0,
            0,
            False,
            {},
            resource,
            str(exc),
        )


def _safe_hex(v: Any) -> bytes:
    try:
        return bytes.fromhex(v) if isinstance(v, str) else b""
    except ValueError:
        return b""


def decode_json(body: bytes) -> list[SpanData]:
    """Parse the OTLP JSON encoding; structural errors raise :class:`DecodeError` naming the place."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise DecodeError("invalid JSON: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError("invalid OTLP JSON: the top level must be an object with resourceSpans")
    out: list[SpanData] = []
    try:
        for i, rs in enumerate(_json_list(doc, "resourceSpans", "resource_spans", "$")):
            where = f"resourceSpans[{i}]"
            if not isinstance(rs, dict):
                raise DecodeError(f"{where}: expected an object")
            res = rs.get("resource") or {}
            if not isinstance(res, dict):
                raise DecodeError(f"{where}.resource: expected an object")
            resource = _json_attrs(_json_list(res, "attributes", "attributes", f"{where}.resource"), where)
            for j, ss in enumerate(_json_list(rs, "scopeSpans", "scope_spans", where)):
                w2 = f"{where}.scopeSpans[{j}]"
                if not isinstance(ss, dict):
                    raise DecodeError(f"{w2}: expected an object")
                for k, s in enumerate(_json_list(ss, "spans", "spans", w2)):
                    out.append(_json_span(s, resource, f"{w2}.spans[{k}]"))
    except RecursionError:
        raise DecodeError("invalid OTLP JSON: nested too deeply") from None
    return out


def encode_response_json(rejected: int, message: str) -> bytes:
    if not rejected and not message:
        return b"{}"
    # int64 fields are strings in OTLP JSON, but exporters accept numbers; strings are the spec.
    return json.dumps({"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}).encode()
