"""One GenAI span → one ``calls`` row: a tuple in :data:`~spendscope.collector.schema.ROW_FIELDS` order.

Pure and hot: it runs once per span. Which attributes fill which column, and how their values are
coerced, is read from :mod:`spendscope.collector.schema`; this module only adds what a declaration
cannot say (the columns derived from others, the checks that reject a span). It understands our
SDK's attributes and other GenAI instrumentations' (current and deprecated ``gen_ai.*`` names,
OpenLLMetry's ``llm.*``): an empty value is an absent one, and of a column's attributes the first
present wins.

Two ways in, one way out. :func:`normalize` takes a decoded :class:`SpanData`. The protobuf fast
path (:func:`rows_from_protobuf`) never builds one: the decoder's attribute cache keeps, per
distinct raw attribute, the slot it fills and its coerced value (:func:`fast_attribute`), so a
span's row is assembled without a dict or a coercion. Both fill the same slots and finish through
:func:`_finish`; anything the fast path cannot vouch for (a value that fails its coercion, a tag, a
bad id or time, no model) goes through :func:`normalize`, which rejects it with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, cast

from spendscope import semconv as sc
from spendscope.collector.fastpb import AttributeCache
from spendscope.collector.otlp import SpanData, walk_protobuf
from spendscope.collector.schema import (
    COLUMNS,
    MAX_TAGS,
    MAX_TEXT,
    MAX_TOKENS,
    ROW_FIELDS,
    ROW_INDEX,
    Coerce,
)

__all__ = [
    "Normalized",
    "Rejected",
    "Row",
    "fast_attribute",
    "fast_row",
    "normalize",
    "rows_from_protobuf",
]

Row = tuple[Any, ...]


class Rejected(ValueError):
    """A GenAI span that cannot become a row; the message is the reason stored with it."""


@dataclass(slots=True)
class Normalized:
    """What the fast path made of a request: rows, spans that need :func:`normalize`, and how many
    spans were not GenAI (acknowledged, not stored)."""

    rows: list[Row] = field(default_factory=list)
    spans: list[SpanData] = field(default_factory=list)
    ignored: int = 0


# --- coercion -----------------------------------------------------------------------------------


def _bad(key: str, what: str, v: Any) -> Rejected:
    return Rejected(f"attribute {key} must be {what}, got {v!r:.60}")


def _to_int(key: str, v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    raise _bad(key, "an integer", v)


def _text(what: str, v: str) -> str:
    """``v`` if it can be stored: at most MAX_TEXT bytes of valid UTF-8 (no lone surrogates)."""
    if len(v) > MAX_TEXT // 4 and len(v.encode("utf-8", "surrogatepass")) > MAX_TEXT:
        raise Rejected(f"{what} is longer than {MAX_TEXT} bytes")
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(f"{what} is not valid unicode (a lone surrogate)") from None
    return v


def _str(key: str, v: Any) -> str | None:
    if type(v) is not str:
        if isinstance(v, list):
            v = ",".join(str(x) for x in v)
        elif isinstance(v, bytes):
            v = v.hex()
        elif isinstance(v, float) and not math.isfinite(v):
            raise Rejected(f"attribute {key} must be finite, got {v}")
        else:
            v = str(v)
    return _text(f"attribute {key}", v) if v else None


def _count(key: str, v: Any, limit: int = 1 << 62) -> int:
    if isinstance(v, bool):
        raise _bad(key, "an integer", v)
    n = _to_int(key, v)
    if not 0 <= n < limit:
        raise Rejected(f"attribute {key} out of range: {n} (must be in [0, {limit}))")
    return n


def _tokens(key: str, v: Any) -> int:
    return _count(key, v, MAX_TOKENS)


def _int32(key: str, v: Any) -> int:
    # Status codes and attempts are 32-bit columns: a larger value would fail the whole batch.
    if isinstance(v, bool):
        raise _bad(key, "an integer", v)
    n = _to_int(key, v)
    if not -(1 << 31) <= n < 1 << 31:
        raise Rejected(f"attribute {key} out of range: {n}")
    return n


def _float(key: str, v: Any) -> float:
    if type(v) is float:
        f: float = v
    elif isinstance(v, int | str) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:  # an integer from OTLP JSON can be far beyond a double
            raise Rejected(f"attribute {key} out of range") from None
        except ValueError:
            raise _bad(key, "a number", v) from None
    else:
        raise _bad(key, "a number", v)
    # NaN and infinities are never stored: every later aggregate and JSON answer would choke on them.
    if not math.isfinite(f):
        raise Rejected(f"attribute {key} must be finite, got {f}")
    return f


def _bool(key: str, v: Any) -> bool:
    if type(v) is bool:
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, int):
        return v != 0
    raise _bad(key, "a boolean", v)


_COERCE: dict[Coerce, Callable[[str, Any], Any]] = {
    "str": _str,
    "tokens": _tokens,
    "count": _count,
    "int32": _int32,
    "float": _float,
    "bool": _bool,
}

# --- slots ----------------------------------------------------------------------------------------
# A span is assembled in a list of slots: first the row's own fields (ROW_FIELDS order), then one
# slot for each further attribute of a column (its fallbacks), then a sink for attributes no column
# reads. A column's first attribute fills its own slot; _finish falls back in order of precedence.

_N_ROW = len(ROW_FIELDS)
Coercer = Callable[[str, Any], Any]


def _slots() -> tuple[dict[str, tuple[int, Coercer]], tuple[tuple[int, tuple[int, ...]], ...], int]:
    """Per attribute its slot and coercer; per column with fallbacks its slot and theirs; the sink."""
    keys: dict[str, tuple[int, Coercer]] = {}
    fallbacks: list[tuple[int, tuple[int, ...]]] = []
    free = _N_ROW
    for col in COLUMNS:
        if not col.attributes:
            continue
        assert col.coerce is not None, col.name
        coerce, own = _COERCE[col.coerce], ROW_INDEX[col.name]
        keys[col.attributes[0]] = (own, coerce)
        extra = tuple(range(free, free + len(col.attributes) - 1))
        keys.update((attr, (slot, coerce)) for attr, slot in zip(col.attributes[1:], extra, strict=True))
        free += len(extra)
        if extra:
            fallbacks.append((own, extra))
    return keys, tuple(fallbacks), free


_KEYS, _FALLBACKS, _IGNORED = _slots()
_N_SLOTS = _IGNORED + 1
_NORMALIZE = -1  # the slot of an attribute only normalize() handles

_TAG_PREFIX = sc.TAG_PREFIX
_TAG_LEN = len(_TAG_PREFIX)
_GENAI_MARKERS = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM)
_API_BY_OPERATION = {
    "chat": "chat_completions",
    "text_completion": "completions",
    "completion": "completions",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "responses": "responses",
    "response": "responses",
}

# The row's columns that _finish sets or reads by name.
_TRACE_ID, _SPAN_ID = ROW_INDEX["trace_id"], ROW_INDEX["span_id"]
_START, _END = ROW_INDEX["start_ns"], ROW_INDEX["end_ns"]
_SERVICE, _SPAN_NAME, _TAGS = ROW_INDEX["service"], ROW_INDEX["span_name"], ROW_INDEX["tags"]
_PROVIDER, _OPERATION, _API = ROW_INDEX["provider"], ROW_INDEX["operation"], ROW_INDEX["api"]
_REQUEST_MODEL, _RESPONSE_MODEL = ROW_INDEX["request_model"], ROW_INDEX["response_model"]
_MODEL, _STATUS, _IS_ERROR = ROW_INDEX["model"], ROW_INDEX["status_code"], ROW_INDEX["is_error"]
_BATCH = ROW_INDEX["batch"]
_SYSTEM = _KEYS[sc.GEN_AI_SYSTEM][0]  # the provider's fallback slot
assert _KEYS[sc.GEN_AI_PROVIDER_NAME][0] == _PROVIDER and _KEYS[sc.GEN_AI_OPERATION_NAME][0] == _OPERATION


def _finish(
    v: list[Any],
    trace_id: bytes,
    span_id: bytes,
    name: str,
    start: int,
    end: int,
    status_error: bool,
    service: Any,
) -> Row:
    """The row of a GenAI span from its filled slots; raise :class:`Rejected`."""
    for own, extra in _FALLBACKS:
        if v[own] is None:
            for slot in extra:
                if v[slot] is not None:
                    v[own] = v[slot]
                    break
    model = v[_RESPONSE_MODEL] or v[_REQUEST_MODEL]
    if not model:
        raise Rejected("GenAI span without a model (gen_ai.request.model / gen_ai.response.model)")
    if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id):
        raise Rejected("invalid trace_id or span_id (need 16 and 8 non-zero bytes)")
    if start <= 0:
        raise Rejected("span has no start time")
    if end < start:
        raise Rejected("span ends before it starts")
    if start >= 1 << 62 or end >= 1 << 62:
        raise Rejected("span start or end time out of range")
    if name:
        _text("span name", name)
    if service is not None and type(service) is not str:
        service = _str(sc.SERVICE_NAME, service)
    if service:
        _text("resource attribute service.name", service)
    v[_TRACE_ID] = trace_id.hex()
    v[_SPAN_ID] = span_id.hex()
    v[_START] = start
    v[_END] = end
    v[_SERVICE] = service
    v[_SPAN_NAME] = name or None
    v[_MODEL] = model
    operation = v[_OPERATION]
    if v[_API] is None and operation:
        v[_API] = _API_BY_OPERATION.get(operation, operation)
    status = v[_STATUS]
    v[_IS_ERROR] = status_error or (status is not None and status >= 400)
    v[_BATCH] = bool(v[_BATCH])
    return tuple(v[:_N_ROW])


def normalize(span: SpanData) -> Row | None:
    """Return the row for a GenAI span, ``None`` for a span that is not GenAI, or raise :class:`Rejected`."""
    if span.problem is not None:
        raise Rejected(span.problem)
    a = span.attributes
    if all(a.get(k) is None for k in _GENAI_MARKERS):
        return None  # not GenAI (the contract: it has none of these): none of its attributes is ours to judge
    v: list[Any] = [None] * _N_SLOTS
    tags: list[tuple[str, str]] | None = None
    for key, value in a.items():
        if value is None:
            continue
        entry = _KEYS.get(key)
        if entry is not None:
            slot, coerce = entry
            v[slot] = coerce(key, value)
        elif key.startswith(_TAG_PREFIX):
            if tags is None:
                tags = []
            elif len(tags) == MAX_TAGS:
                raise Rejected(f"span has more than {MAX_TAGS} tags (at most {MAX_TAGS} per span)")
            tag = _text(f"tag key {key[:60]!r}", key[_TAG_LEN:])
            tags.append((tag, _str(key, value) or ""))
    v[_TAGS] = tags
    return _finish(
        v,
        span.trace_id,
        span.span_id,
        span.name,
        span.start_ns,
        span.end_ns,
        span.status_error,
        span.resource.get(sc.SERVICE_NAME),
    )


def fast_attribute(key: str, value: Any) -> tuple[int, Any]:
    """The slot a decoded attribute fills in :func:`fast_row` and its coerced value.

    Slot -1 when only :func:`normalize` can handle it: a tag, or a value whose coercion fails (the
    rejection names it).
    """
    if value is None:
        return _IGNORED, None
    entry = _KEYS.get(key)
    if entry is None:
        return (_NORMALIZE, None) if key.startswith(_TAG_PREFIX) else (_IGNORED, None)
    slot, coerce = entry
    try:
        coerced = coerce(key, value)
    except Rejected:
        return _NORMALIZE, None
    if coerced is None and key in _GENAI_MARKERS:
        return _NORMALIZE, None  # present but empty: it still makes the span GenAI
    return slot, coerced


def fast_row(
    trace_id: bytes,
    span_id: bytes,
    name: str,
    start: int,
    end: int,
    status_error: bool,
    attributes: Iterable[tuple[str, Any, int, Any]],
    service: Any,
) -> Row | Literal[False] | None:
    """What :func:`normalize` returns for this span, or ``False`` if it must decide.

    ``attributes`` are (key, value, slot, coerced value), the last two from :func:`fast_attribute`.
    """
    v: list[Any] = [None] * _N_SLOTS
    for _key, _value, slot, value in attributes:
        if slot < 0:
            return False
        v[slot] = value
    if v[_PROVIDER] is None and v[_OPERATION] is None and v[_SYSTEM] is None:
        return None  # no GenAI marker (an empty one would have gone to normalize)
    try:
        return _finish(v, trace_id, span_id, name, start, end, status_error, service)
    except Rejected:
        return False  # normalize() rejects it with the reason


@cache
def _attribute_cache() -> AttributeCache:
    """This process's cache of decoded attributes with their slots (built on first use)."""
    return AttributeCache(fast_attribute)


def rows_from_protobuf(body: bytes) -> Normalized:
    """Decode an OTLP protobuf request straight into rows where the fast path can.

    Raises :class:`~spendscope.collector.otlp.DecodeError` like the decoder does.
    """
    made, spans = walk_protobuf(body, _attribute_cache(), fast_row)
    ignored = made.count(None)
    rows: list[Row] = [r for r in made if r is not None] if ignored else cast(list[Row], made)
    return Normalized(rows, spans, ignored)
