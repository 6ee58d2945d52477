"""OTLP/protobuf bytes of spendscope's span records, written directly: the fast twin of the official encoder.

The official encoder builds a protobuf object per span and per attribute; for a 30-attribute call
span that is most of what the export costs (``python -m benchmarks.sdk --instructions``). This module
writes the same bytes with a few joins, caching each attribute's encoding since most repeat from
call to call (provider, operation, model, status, limits, user, feature); the caches are bounded.
The test suite checks that the bytes decode to exactly what the official encoder makes of the same
spans (:func:`spendscope.instrument.record.to_readable_span`). The resource and the scope are
encoded once, by the official encoder.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from spendscope.instrument.record import SpanRecord

__all__ = ["Envelope", "encode_records", "envelope"]

_CACHE_MAX = 4096
_HEAD = struct.Struct(">HQQHQ")  # trace_id (field 1, 16 bytes) and span_id (field 2, 8 bytes)
_TIMES = struct.Struct("<BQBQ")  # start (field 7) and end (field 8), fixed64
_pack_d = struct.Struct("<d").pack
_MASK64 = (1 << 64) - 1
_KIND_CLIENT = b"\x30\x03"  # SpanKind.CLIENT is 3 in OTLP
_UNSET_STATUS = b"\x7a\x00"
_FLAGS_LOCAL = b"\x85\x01\x00\x01\x00\x00"  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE
_FLAGS_REMOTE = b"\x85\x01\x00\x03\x00\x00"  # ... and SPAN_FLAGS_CONTEXT_IS_REMOTE
_BYTE = [bytes((i,)) for i in range(128)]
# AnyValue{string_value} field heads for strings short enough that both lengths take one byte.
_STR_HEADS = [b"\x12" + _BYTE[size + 2] + b"\x0a" + _BYTE[size] for size in range(126)]

# ((key, value), type(value)) -> the encoded KeyValue field. The type is part of the key so that
# 1, 1.0 and True (equal as dict keys) never share an entry; float zeros (0.0 == -0.0) and tuples
# of anything but strings are not stored. All of a span's attributes are looked up at once, in C
# (map over zip), so that only the misses cost Python work.
_attrs: dict[tuple[tuple[str, Any], type], bytes] = {}
_names: dict[str, bytes] = {}
_keys: dict[str, bytes] = {}


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes negative varints
    if value < 0x80:
        return _BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    size = len(payload)
    return tag + (_BYTE[size] if size < 0x80 else _varint(size)) + payload


def _any_value(value: Any) -> bytes:
    # The official encoder's order of checks (bool before int: bool is an int).
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8"))
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _pack_d(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, (list, tuple)):
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(item)) for item in value]))
    raise TypeError(f"attribute value of type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    """One ``KeyValue`` attribute field; the common exact types without the generic dispatch."""
    key_field = _keys.get(key)
    if key_field is None:
        if len(_keys) >= _CACHE_MAX:
            _keys.clear()
        key_field = _keys[key] = _field(b"\x0a", key.encode("utf-8"))
    kind = type(value)
    inner: bytes
    if kind is str:
        encoded: bytes = value.encode("utf-8")
        size = len(encoded)
        if size < len(_STR_HEADS):
            inner = key_field + _STR_HEADS[size] + encoded
        else:
            inner = key_field + _field(b"\x12", _field(b"\x0a", encoded))
    elif kind is float:
        inner = key_field + b"\x12\x09\x21" + _pack_d(value)
    elif kind is int:
        number = _varint(value)
        inner = key_field + b"\x12" + _BYTE[len(number) + 1] + b"\x18" + number
    else:
        inner = key_field + _field(b"\x12", _any_value(value))
    size = len(inner)
    return b"\x4a" + (_BYTE[size] if size < 0x80 else _varint(size)) + inner


def _encode_missing(parts: list[bytes | None], items: list[tuple[str, Any]]) -> None:
    """Fill the attributes the cache did not have, and remember the cacheable ones."""
    cache = _attrs
    index = -1
    while True:
        try:
            index = parts.index(None, index + 1)
        except ValueError:
            return
        key, value = item = items[index]
        encoded = parts[index] = _key_value(key, value)
        kind = type(value)
        if (kind is not float or value) and (kind is not tuple or all(type(v) is str for v in value)):
            try:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()  # bounded: high-cardinality values (ids) must not grow memory
                cache[item, kind] = encoded
            except TypeError:  # unhashable (a list): encoded every time
                pass


def _cached(item: tuple[str, Any]) -> bytes | None:
    try:
        return _attrs.get((item, type(item[1])))
    except TypeError:
        return None


def _attributes(attrs: dict[str, Any]) -> list[bytes]:
    items = list(attrs.items())
    get = _attrs.get
    try:
        parts: list[bytes | None] = list(map(get, zip(items, map(type, attrs.values()), strict=True)))
    except TypeError:  # an unhashable value (a list): looked up one by one
        parts = [_cached(item) for item in items]
    if not all(parts):
        _encode_missing(parts, items)
    return parts  # type: ignore[return-value]


def _name(name: str) -> bytes:
    encoded = _names.get(name)
    if encoded is None:
        if len(_names) >= _CACHE_MAX:
            _names.clear()
        encoded = _names[name] = _field(b"\x2a", name.encode("utf-8")) + _KIND_CLIENT
    return encoded


def _span(record: SpanRecord) -> bytes:
    name, trace_id, span_id, parent_id, parent_remote, trace_state, start, end, error, attrs = record
    parts = [_HEAD.pack(0x0A10, trace_id >> 64, trace_id & _MASK64, 0x1208, span_id)]
    append = parts.append
    if trace_state:
        append(_field(b"\x1a", trace_state.to_header().encode("utf-8")))
    if parent_id:
        append(b"\x22\x08" + parent_id.to_bytes(8, "big"))
    append(_names.get(name) or _name(name))
    append(_TIMES.pack(0x39, start, 0x41, end))
    parts += _attributes(attrs)
    if error:
        append(_field(b"\x7a", _field(b"\x12", error.encode("utf-8")) + b"\x18\x02"))
    else:
        append(_UNSET_STATUS)
    append(_FLAGS_REMOTE if parent_id and parent_remote else _FLAGS_LOCAL)
    body = b"".join(parts)
    size = len(body)
    return b"\x12" + (_BYTE[size] if size < 0x80 else _varint(size)) + body


class Envelope(NamedTuple):
    """The encoded resource and scope around a batch of spendscope's spans."""

    resource: bytes  # ResourceSpans field 1, empty when the official encoder leaves it out
    resource_schema: bytes  # ResourceSpans field 3
    scope: bytes  # ScopeSpans field 1
    scope_schema: bytes  # ScopeSpans field 3


def envelope(resource: Resource, scope: InstrumentationScope) -> Envelope:
    """Encode ``resource`` and ``scope`` once, with the official encoder (public API only)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext

    probe = ReadableSpan("probe", SpanContext(1, 1, False), resource=resource, instrumentation_scope=scope)
    resource_spans = encode_spans([probe]).resource_spans[0]
    scope_spans = resource_spans.scope_spans[0]

    def field(tag: bytes, parent: Any, name: str) -> bytes:
        return _field(tag, getattr(parent, name).SerializeToString()) if parent.HasField(name) else b""

    def schema(url: str) -> bytes:
        return _field(b"\x1a", url.encode("utf-8")) if url else b""

    return Envelope(
        field(b"\x0a", resource_spans, "resource"),
        schema(resource_spans.schema_url),
        field(b"\x0a", scope_spans, "scope"),
        schema(scope_spans.schema_url),
    )


def encode_records(records: Sequence[SpanRecord], wrap: Envelope) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``records`` (one resource, one scope)."""
    scope_spans = _field(b"\x12", wrap.scope + b"".join(map(_span, records)) + wrap.scope_schema)
    return _field(b"\x0a", wrap.resource + scope_spans + wrap.resource_schema)
