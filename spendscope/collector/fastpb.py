"""A faster protobuf decode of ``ExportTraceServiceRequest`` for the hot path.

Walking ``KeyValue``/``AnyValue`` wrappers costs most of the decode time (a Python object per
attribute and per value, plus ``WhichOneof``). Here upb parses the request with a wire-compatible
"view" schema in which ``Span.attributes`` (and the resource's) are ``repeated bytes``: each
attribute stays one raw ``KeyValue`` encoding. Raw attributes repeat a lot (provider, operation,
model, status 200, user, feature), so they are looked up in a bounded cache; the rest are read by a
small parser for the simple encodings (short key, one scalar value) and anything else falls back to
the real ``KeyValue`` message. The result equals the generic decode (a test checks this).

A cache entry also holds what its owner's ``annotate(key, value)`` made of the attribute (for
normalization's fast path: the row slot and coerced value), so that work runs once per distinct
value, not once per span. The cache knows nothing of rows: its owner passes the function in.

Values that never repeat (ids, remaining rate-limit counts, timings) would only churn the cache, so
they are not stored: those of the attributes known to be per call, and those of any key that keeps
missing (see ``_UNIQUE_AFTER``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as PbDecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from spendscope import semconv as sc

__all__ = [
    "AttributeCache",
    "AttributeError_",
    "Entry",
    "PbDecodeError",
    "parse_request",
    "pb_value",
    "request_class",
]

# A decoded attribute: key, value, and what the cache's owner made of it (two values of its own).
Entry = tuple[str, Any, int, Any]
Annotate = Callable[[str, Any], tuple[int, Any]]

_CACHE_MAX = 65_536
_KEYS_MAX = 4096
# A key whose values missed the cache this often is treated as unique per call from then on.
_UNIQUE_AFTER = 20_000
_PER_CALL = frozenset(
    {
        sc.GEN_AI_RESPONSE_ID,
        sc.OPENAI_REQUEST_ID,
        sc.GEN_AI_TIME_TO_FIRST_CHUNK,
        sc.RATELIMIT_REMAINING_REQUESTS,
        sc.RATELIMIT_REMAINING_TOKENS,
        sc.RATELIMIT_RESET_REQUESTS_S,
        sc.RATELIMIT_RESET_TOKENS_S,
        sc.RETRY_AFTER_S,
    }
)
_unpack_double = struct.Struct("<d").unpack_from


class AttributeError_(ValueError):
    """An attribute's encoding is invalid (its span is rejected, the request is not)."""


@cache
def request_class() -> Any:
    """Build the view message classes once, on first use (no work at import)."""
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
        ("name", 5, t.TYPE_BYTES, opt, None),  # decoded per span: bad UTF-8 rejects that span only
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


def pb_value(v: Any) -> Any:
    """An ``AnyValue`` message as a Python value (lists and dicts for arrays and kvlists)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: pb_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)


def _generic(raw: bytes) -> tuple[str, Any]:
    try:
        kv = KeyValue.FromString(raw)
        return kv.key, pb_value(kv.value)
    except (PbDecodeError, RecursionError) as exc:
        raise AttributeError_(f"invalid attribute encoding: {exc}") from None


def _simple(raw: bytes, keys: dict[bytes, str]) -> tuple[str, Any] | None:
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
    key = keys.get(kb)
    if key is None:
        try:
            key = kb.decode()
        except UnicodeDecodeError:
            return None
        if len(keys) < _KEYS_MAX:
            keys[kb] = key
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


class AttributeCache:
    """Decodes raw ``KeyValue`` encodings, remembering the ones that repeat (bounded)."""

    def __init__(self, annotate: Annotate) -> None:
        self._annotate = annotate
        self._cache: dict[bytes, Entry] = {}
        self._keys: dict[bytes, str] = {}
        self._misses: dict[str, int] = {}
        self.unique: set[str] = set(_PER_CALL)  # keys whose values are not kept

    def __len__(self) -> int:
        return len(self._cache)

    def cached_keys(self) -> list[str]:
        return [entry[0] for entry in self._cache.values()]

    def _parse(self, raw: bytes) -> Entry:
        pair = _simple(raw, self._keys)
        cacheable = True
        if pair is None:
            pair = _generic(raw)
            # Short arrays (finish reasons) repeat like scalars; the cached list is shared and only read.
            cacheable = len(raw) <= 256 and not isinstance(pair[1], dict)
        key, value = pair
        parsed = (key, value, *self._annotate(key, value))
        if not cacheable or key in self.unique:
            return parsed
        n = self._misses.get(key, 0) + 1
        if n > _UNIQUE_AFTER and len(self.unique) < _KEYS_MAX:
            self.unique.add(key)
            return parsed
        if key in self._misses or len(self._misses) < _KEYS_MAX:
            self._misses[key] = n
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()  # crude but bounded; the hot values come back within a batch
        self._cache[raw] = parsed
        return parsed

    def entries(self, raws: Any) -> list[Entry]:
        """Decode raw ``KeyValue`` encodings; raise :class:`AttributeError_` if one is invalid."""
        # The common case runs at C speed: map() over the cache.
        entries: list[Entry | None] = list(map(self._cache.get, raws))
        if None in entries:
            for i, entry in enumerate(entries):
                if entry is None:
                    entries[i] = self._parse(raws[i])
        return entries  # type: ignore[return-value]
