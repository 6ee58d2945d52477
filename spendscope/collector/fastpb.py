"""A faster protobuf decode of ``ExportTraceServiceRequest`` for the hot path.

Walking ``KeyValue``/``AnyValue`` wrappers costs most of the decode time (a Python object per
attribute and per value, plus ``WhichOneof``). Here upb parses the request with a wire-compatible
"view" schema in which ``Span.attributes`` (and the resource's) are ``repeated bytes``: each
attribute stays one raw ``KeyValue`` encoding. Raw attributes repeat a lot (provider, operation,
model, status 200, user, feature), so they are looked up in a bounded cache; the rest are read by a
small parser for the simple encodings (short key, one scalar value) and anything else falls back to
the real ``KeyValue`` message. The result equals the generic decode (a test checks this).

A cache entry also holds where normalization's fast path puts the attribute (its row slot and
coerced value, from :func:`~spendscope.collector.normalize.fast_attribute`), so the coercion of a
repeated value runs once, not once per span.

Values that never repeat (ids, remaining rate-limit counts, timings) would only churn the cache, so
they are not stored: those of the attributes known to be per call, and those of any key that keeps
missing (see ``_UNIQUE_AFTER``).
"""

from __future__ import annotations

import struct
from functools import cache
from typing import Any

from spendscope import semconv as sc
from spendscope.collector.normalize import fast_attribute

__all__ = [
    "AttributeError_",
    "Entry",
    "attribute_entries",
    "parse_request",
    "request_class",
]

# A decoded attribute: key, value, and where normalize's fast path puts it (slot, coerced value).
Entry = tuple[str, Any, int, Any]

_CACHE_MAX = 65_536
_cache: dict[bytes, Entry] = {}
_keys: dict[bytes, str] = {}
# A key whose values missed the cache this often is treated as unique per call from then on.
_UNIQUE_AFTER = 20_000
_misses: dict[str, int] = {}
_unique: set[str] = {
    sc.GEN_AI_RESPONSE_ID,
    sc.OPENAI_REQUEST_ID,
    sc.GEN_AI_TIME_TO_FIRST_CHUNK,
    sc.RATELIMIT_REMAINING_REQUESTS,
    sc.RATELIMIT_REMAINING_TOKENS,
    sc.RATELIMIT_RESET_REQUESTS_S,
    sc.RATELIMIT_RESET_TOKENS_S,
    sc.RETRY_AFTER_S,
}
_unpack_double = struct.Struct("<d").unpack_from


class AttributeError_(ValueError):
    """An attribute's encoding is invalid (its span is rejected, the request is not)."""


@cache
def request_class() -> Any:
    """Build the view message classes once, on first use (no work at import)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(
        name="spendscope_otlp_view.proto", package="spendscope.view", syntax="proto3"
    )
    t = descriptor_pb2.FieldDescriptorProto

    def msg(name: str, *fields: tuple[str, int, int, int, str | None]) -> None:
        m = f.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            fd = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                fd.type_name = f".spendscope.view.{type_name}"

    opt, rep = t.LABEL_OPTIONAL, t.LABEL_REPEATED
    msg("Status", ("code", 3, t.TYPE_INT32, opt, None))
    msg(
        "Span",
        ("trace_id", 1, t.TYPE_BYTES, opt, None),
        ("span_id", 2, t.TYPE_BYTES, opt, None),
        ("name", 5, t.TYPE_STRING, opt, None),
        ("start_time_unix_nano", 7, t.TYPE_FIXED64, opt, None),
        ("end_time_unix_nano", 8, t.TYPE_FIXED64, opt, None),
        ("attributes", 9, t.TYPE_BYTES, rep, None),
        ("status", 15, t.TYPE_MESSAGE, opt, "Status"),
    )
    msg("ScopeSpans", ("spans", 2, t.TYPE_MESSAGE, rep, "Span"))
    msg("Resource", ("attributes", 1, t.TYPE_BYTES, rep, None))
    msg(
        "ResourceSpans",
        ("resource", 1, t.TYPE_MESSAGE, opt, "Resource"),
        ("scope_spans", 2, t.TYPE_MESSAGE, rep, "ScopeSpans"),
    )
    msg("Request", ("resource_spans", 1, t.TYPE_MESSAGE, rep, "ResourceSpans"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("spendscope.view.Request"))


def parse_request(body: bytes) -> Any:
    return request_class().FromString(body)


def _generic(raw: bytes) -> tuple[str, Any]:
    from google.protobuf.message import DecodeError as PbDecodeError
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    from spendscope.collector.otlp import pb_value

    try:
        kv = KeyValue.FromString(raw)
        return kv.key, pb_value(kv.value)
    except (PbDecodeError, RecursionError) as exc:
        raise AttributeError_(f"invalid attribute encoding: {exc}") from None


def _simple(raw: bytes) -> tuple[str, Any] | None:
    """Parse ``KeyValue{key: short string, value: AnyValue{one scalar}}`` or return None."""
    n = len(raw)
    if n < 4 or raw[0] != 0x0A:
        return None
    klen = raw[1]
    if klen >= 0x80:
        return None
    p = 2 + klen
    if p + 2 > n or raw[p] != 0x12:
        return None
    vlen = raw[p + 1]
    p += 2
    if vlen >= 0x80 or p + vlen != n:
        return None
    kb = raw[2 : 2 + klen]
    key = _keys.get(kb)
    if key is None:
        try:
            key = kb.decode()
        except UnicodeDecodeError:
            return None
        if len(_keys) < 4096:
            _keys[kb] = key
    if vlen == 0:
        return key, None
    tag = raw[p]
    if tag == 0x0A:  # string_value
        slen = raw[p + 1]
        if slen >= 0x80 or p + 2 + slen != n:
            return None
        try:
            return key, raw[p + 2 : n].decode()
        except UnicodeDecodeError:
            return None
    if tag == 0x18:  # int_value: varint
        result = shift = 0
        q = p + 1
        while q < n:
            b = raw[q]
            q += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                if q != n:
                    return None
                return key, result - (1 << 64) if result >= 1 << 63 else result
            shift += 7
        return None
    if tag == 0x21 and p + 9 == n:  # double_value
        return key, _unpack_double(raw, p + 1)[0]
    if tag == 0x10 and p + 2 == n and raw[p + 1] < 2:  # bool_value
        return key, raw[p + 1] == 1
    return None


def _parse(raw: bytes) -> Entry:
    pair = _simple(raw)
    cacheable = True
    if pair is None:
        pair = _generic(raw)
        # Short arrays (finish reasons) repeat like scalars; the cached list is shared and only read.
        cacheable = len(raw) <= 256 and not isinstance(pair[1], dict)
    key, value = pair
    parsed = (key, value, *fast_attribute(key, value))
    if not cacheable or key in _unique:
        return parsed
    n = _misses.get(key, 0) + 1
    if n > _UNIQUE_AFTER and len(_unique) < 4096:
        _unique.add(key)
        return parsed
    if key in _misses or len(_misses) < 4096:
        _misses[key] = n
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()  # crude but bounded; the hot values come back within a batch
    _cache[raw] = parsed
    return parsed


def attribute_entries(raws: Any) -> list[Entry]:
    """Decode raw ``KeyValue`` encodings; raise :class:`AttributeError_` if one is invalid."""
    # The common case runs at C speed: map() over the cache.
    entries: list[Entry | None] = list(map(_cache.get, raws))
    if None in entries:
        for i, entry in enumerate(entries):
            if entry is None:
                entries[i] = _parse(raws[i])
    return entries  # type: ignore[return-value]
