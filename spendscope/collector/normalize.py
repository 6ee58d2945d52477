"""One GenAI span → one ``calls`` row (a plain tuple in :data:`ROW_FIELDS` order).

Pure and hot: it runs once per span, so it reads attributes with dict lookups and coerces only
when a value is not already the expected type. It understands our SDK's attributes and other
GenAI instrumentations' (current and deprecated ``gen_ai.*`` names, OpenLLMetry's ``llm.*``).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import Any, Literal

from spendscope import semconv as sc
from spendscope.collector.otlp import SpanData

__all__ = [
    "ROW_FIELDS",
    "TOKEN_FIELDS",
    "Rejected",
    "fast_attribute",
    "fast_row",
    "is_genai",
    "normalize",
]

ROW_FIELDS: tuple[str, ...] = (
    "trace_id",
    "span_id",
    "start_ns",
    "end_ns",
    "service",
    "provider",
    "operation",
    "api",
    "span_name",
    "server_address",
    "request_model",
    "response_model",
    "model",
    "project",
    "organization",
    "user_id",
    "feature",
    "tags",
    "stream",
    "stream_completed",
    "status_code",
    "is_error",
    "error_type",
    "ttfc_s",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "service_tier",
    "batch",
    "attempt",
    "request_id",
    "response_id",
    "ratelimit_limit_requests",
    "ratelimit_remaining_requests",
    "ratelimit_limit_tokens",
    "ratelimit_remaining_tokens",
    "ratelimit_reset_requests_s",
    "ratelimit_reset_tokens_s",
    "retry_after_s",
    "usage_source",
)

TOKEN_FIELDS: tuple[str, ...] = ROW_FIELDS[24:31]


class Rejected(ValueError):
    """A GenAI span that cannot become a row; the message is the reason stored with it."""


# Names other instrumentations use for what our contract calls by another name.
_LLM_REQUEST_TYPE = "llm.request.type"  # OpenLLMetry's operation
_LLM_IS_STREAMING = "llm.is_streaming"
_HTTP_STATUS_OLD = "http.status_code"
_REQ_USER = "gen_ai.request.user"
_USER_ID = "user.id"
_OLD_REQ_TIER = "gen_ai.openai.request.service_tier"
_OLD_RESP_TIER = "gen_ai.openai.response.service_tier"
_CACHE_READ_OLD = "gen_ai.usage.cache_read_input_tokens"
_CACHE_WRITE_OLD = "gen_ai.usage.cache_creation_input_tokens"
_REASONING_OLD = "gen_ai.usage.reasoning_tokens"

_TAG_PREFIX = sc.TAG_PREFIX
_TAG_LEN = len(_TAG_PREFIX)

_API_BY_OPERATION = {
    "chat": "chat_completions",
    "text_completion": "completions",
    "completion": "completions",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "responses": "responses",
    "response": "responses",
}


def is_genai(attrs: dict[str, Any]) -> bool:
    return sc.GEN_AI_OPERATION_NAME in attrs or sc.GEN_AI_PROVIDER_NAME in attrs or sc.GEN_AI_SYSTEM in attrs


def _coerce_int(key: str, v: Any) -> int:
    if isinstance(v, bool):
        raise Rejected(f"attribute {key} must be an integer, got a boolean")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    raise Rejected(f"attribute {key} must be an integer, got {v!r:.60}")


def _int(a: dict[str, Any], key: str) -> int | None:
    # Status codes and attempts are 32-bit columns: a larger value would fail the whole batch.
    v = a.get(key)
    if v is None:
        return None
    if type(v) is not int:
        v = _coerce_int(key, v)
    if not -(1 << 31) <= v < 1 << 31:
        raise Rejected(f"attribute {key} out of range: {v}")
    return v


def _count(a: dict[str, Any], key: str, alt: str | None = None) -> int | None:
    v = a.get(key)
    if v is None and alt is not None:
        key, v = alt, a.get(alt)
    if v is None:
        return None
    if type(v) is not int:
        v = _coerce_int(key, v)
    if v < 0 or v >= 1 << 62:
        raise Rejected(f"attribute {key} out of range: {v}")
    return v


def _float(a: dict[str, Any], key: str) -> float | None:
    v = a.get(key)
    if v is None or type(v) is float:
        return v
    if isinstance(v, int | str) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:  # an integer from OTLP JSON can be far beyond a double
            raise Rejected(f"attribute {key} out of range") from None
        except ValueError:
            pass
    raise Rejected(f"attribute {key} must be a number, got {v!r:.60}")


def _str(a: dict[str, Any], key: str) -> str | None:
    v = a.get(key)
    if v is None or type(v) is str:
        return v or None
    if isinstance(v, list):
        return ",".join(str(x) for x in v) or None
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _bool(a: dict[str, Any], key: str) -> bool | None:
    v = a.get(key)
    if v is None or type(v) is bool:
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, int):
        return v != 0
    raise Rejected(f"attribute {key} must be a boolean, got {v!r:.60}")


def _tags(a: dict[str, Any]) -> list[tuple[str, str]] | None:
    # Most spans carry only names we know: one C-level set check, the scan only otherwise.
    if _KNOWN_KEYS.issuperset(a) or not any(map(str.startswith, a, repeat(_TAG_PREFIX))):
        return None
    return [
        (k[_TAG_LEN:], v if type(v) is str else str(v)) for k, v in a.items() if k.startswith(_TAG_PREFIX)
    ]


def normalize(span: SpanData) -> tuple[Any, ...] | None:
    """Return the row for a GenAI span, ``None`` for a span that is not GenAI, or raise :class:`Rejected`."""
    if span.problem is not None:
        raise Rejected(span.problem)
    a = span.attributes
    provider = a.get(sc.GEN_AI_PROVIDER_NAME) or a.get(sc.GEN_AI_SYSTEM)
    operation = a.get(sc.GEN_AI_OPERATION_NAME)
    if provider is None and operation is None:
        return None
    if operation is None:
        operation = a.get(_LLM_REQUEST_TYPE)
    request_model = _str(a, sc.GEN_AI_REQUEST_MODEL)
    response_model = _str(a, sc.GEN_AI_RESPONSE_MODEL)
    model = response_model or request_model
    if not model:
        raise Rejected("GenAI span without a model (gen_ai.request.model / gen_ai.response.model)")
    tid, sid = span.trace_id, span.span_id
    if len(tid) != 16 or len(sid) != 8 or not any(tid) or not any(sid):
        raise Rejected("invalid trace_id or span_id (need 16 and 8 non-zero bytes)")
    start, end = span.start_ns, span.end_ns
    if start <= 0:
        raise Rejected("span has no start time")
    if end < start:
        raise Rejected("span ends before it starts")
    if start >= 1 << 62 or end >= 1 << 62:
        raise Rejected("span start or end time out of range")

    status = _int(a, sc.HTTP_RESPONSE_STATUS_CODE)
    if status is None:
        status = _int(a, _HTTP_STATUS_OLD)
    is_error = span.status_error or (status is not None and status >= 400)
    operation = _str(a, sc.GEN_AI_OPERATION_NAME) if operation is None else str(operation)
    api = _str(a, sc.OPENAI_API_TYPE) or (_API_BY_OPERATION.get(operation, operation) if operation else None)
    stream = _bool(a, sc.GEN_AI_REQUEST_STREAM)
    if stream is None:
        stream = _bool(a, _LLM_IS_STREAMING)
    tier = (
        _str(a, sc.OPENAI_RESPONSE_SERVICE_TIER)
        or _str(a, _OLD_RESP_TIER)
        or _str(a, sc.OPENAI_REQUEST_SERVICE_TIER)
        or _str(a, _OLD_REQ_TIER)
    )
    service = span.resource.get(sc.SERVICE_NAME)
    return (
        tid.hex(),
        sid.hex(),
        start,
        end or start,
        service if service is None or type(service) is str else str(service),
        str(provider) if provider is not None else None,
        operation,
        api,
        span.name or None,
        _str(a, sc.SERVER_ADDRESS),
        request_model,
        response_model,
        model,
        _str(a, sc.OPENAI_PROJECT),
        _str(a, sc.OPENAI_ORGANIZATION),
        _str(a, sc.USER) or _str(a, _REQ_USER) or _str(a, _USER_ID),
        _str(a, sc.FEATURE),
        _tags(a),
        stream,
        _bool(a, sc.STREAM_COMPLETED),
        status,
        is_error,
        _str(a, sc.ERROR_TYPE),
        _float(a, sc.GEN_AI_TIME_TO_FIRST_CHUNK),
        _count(a, sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_PROMPT_TOKENS),
        _count(a, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, _CACHE_READ_OLD),
        _count(a, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
        if sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS in a or sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS in a
        else _count(a, _CACHE_WRITE_OLD),
        _count(a, sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS),
        _count(a, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, _REASONING_OLD),
        _count(a, sc.USAGE_INPUT_AUDIO_TOKENS),
        _count(a, sc.USAGE_OUTPUT_AUDIO_TOKENS),
        tier,
        bool(_bool(a, sc.BATCH)),
        _int(a, sc.ATTEMPT),
        _str(a, sc.OPENAI_REQUEST_ID),
        _str(a, sc.GEN_AI_RESPONSE_ID),
        _count(a, sc.RATELIMIT_LIMIT_REQUESTS),
        _count(a, sc.RATELIMIT_REMAINING_REQUESTS),
        _count(a, sc.RATELIMIT_LIMIT_TOKENS),
        _count(a, sc.RATELIMIT_REMAINING_TOKENS),
        _float(a, sc.RATELIMIT_RESET_REQUESTS_S),
        _float(a, sc.RATELIMIT_RESET_TOKENS_S),
        _float(a, sc.RETRY_AFTER_S),
        _str(a, sc.USAGE_SOURCE),
    )


# Every attribute name this module reads, plus common ones it ignores (see _tags).
_KNOWN_KEYS = frozenset(
    [getattr(sc, n) for n in sc.__all__ if n not in ("TAG_PREFIX", "SERVICE_NAME")]
    + [
        _LLM_REQUEST_TYPE,
        _LLM_IS_STREAMING,
        _HTTP_STATUS_OLD,
        _REQ_USER,
        _USER_ID,
        _OLD_REQ_TIER,
        _OLD_RESP_TIER,
        _CACHE_READ_OLD,
        _CACHE_WRITE_OLD,
        _REASONING_OLD,
        "gen_ai.request.max_tokens",
        "gen_ai.request.temperature",
        "gen_ai.request.top_p",
        "gen_ai.request.seed",
        "gen_ai.output.type",
        "gen_ai.request.choice.count",
        "gen_ai.request.encoding_formats",
        "http.request.method",
        "url.full",
    ]
)


# --- the fast path ------------------------------------------------------------------------------
# Most spans carry only attributes of the expected type, and their values repeat (models, status,
# users). The decoder caches, per distinct raw attribute, which slot of the row it fills and its
# coerced value (see fast_attribute), so a span's row is assembled without a dict or a coercion.
# Anything unusual (a value needing a coercion that may fail, tags, an empty value, a bad id or
# time, no model) goes through normalize() instead, so the two always agree.

_NORMALIZE = -1  # the slot of an attribute only normalize() handles

_N_ROW = len(ROW_FIELDS)
_SLOT = {name: i for i, name in enumerate(ROW_FIELDS)}
# The row's columns that fast_row sets by name (derived, or read to derive others).
_C_TRACE_ID = _SLOT["trace_id"]
_C_SPAN_ID = _SLOT["span_id"]
_C_START = _SLOT["start_ns"]
_C_END = _SLOT["end_ns"]
_C_SERVICE = _SLOT["service"]
_C_PROVIDER = _SLOT["provider"]
_C_OPERATION = _SLOT["operation"]
_C_API = _SLOT["api"]
_C_SPAN_NAME = _SLOT["span_name"]
_C_REQUEST_MODEL = _SLOT["request_model"]
_C_RESPONSE_MODEL = _SLOT["response_model"]
_C_MODEL = _SLOT["model"]
_C_USER = _SLOT["user_id"]
_C_STREAM = _SLOT["stream"]
_C_STATUS = _SLOT["status_code"]
_C_IS_ERROR = _SLOT["is_error"]
_C_INPUT = _SLOT["input_tokens"]
_C_CACHED = _SLOT["cached_input_tokens"]
_C_CACHE_WRITE = _SLOT["cache_write_input_tokens"]
_C_OUTPUT = _SLOT["output_tokens"]
_C_REASONING = _SLOT["reasoning_tokens"]
_C_TIER = _SLOT["service_tier"]
_C_BATCH = _SLOT["batch"]
# Slots after the row: attributes that only feed a derived column (alternatives, older names).
(
    _PROVIDER,
    _SYSTEM,
    _OPERATION,
    _LLM_OPERATION,
    _API_TYPE,
    _USER,
    _REQUEST_USER,
    _USER_ID_SLOT,
    _STREAM,
    _LLM_STREAM,
    _STATUS,
    _STATUS_OLD,
    _PROMPT,
    _CACHE_READ_OLD_SLOT,
    _CACHE_WRITE,
    _CACHE_CREATION,
    _CACHE_WRITE_OLD_SLOT,
    _COMPLETION,
    _REASONING_OLD_SLOT,
    _TIER_RESPONSE,
    _TIER_RESPONSE_OLD,
    _TIER_REQUEST,
    _TIER_REQUEST_OLD,
    _BATCH_SLOT,
    _IGNORED,
    _N_SLOTS,
) = range(_N_ROW, _N_ROW + 26)


def _exact_str(a: dict[str, Any], key: str) -> str:
    # Provider and operation are read as sent; only strings take the fast path.
    v = a[key]
    if type(v) is not str:
        raise Rejected("not a string")
    return v


_FAST_KEYS: dict[str, tuple[int, Any]] = {
    sc.GEN_AI_PROVIDER_NAME: (_PROVIDER, _exact_str),
    sc.GEN_AI_SYSTEM: (_SYSTEM, _exact_str),
    sc.GEN_AI_OPERATION_NAME: (_OPERATION, _exact_str),
    _LLM_REQUEST_TYPE: (_LLM_OPERATION, _exact_str),
    sc.OPENAI_API_TYPE: (_API_TYPE, _str),
    sc.SERVER_ADDRESS: (_SLOT["server_address"], _str),
    sc.GEN_AI_REQUEST_MODEL: (_SLOT["request_model"], _str),
    sc.GEN_AI_RESPONSE_MODEL: (_SLOT["response_model"], _str),
    sc.OPENAI_PROJECT: (_SLOT["project"], _str),
    sc.OPENAI_ORGANIZATION: (_SLOT["organization"], _str),
    sc.USER: (_USER, _str),
    _REQ_USER: (_REQUEST_USER, _str),
    _USER_ID: (_USER_ID_SLOT, _str),
    sc.FEATURE: (_SLOT["feature"], _str),
    sc.GEN_AI_REQUEST_STREAM: (_STREAM, _bool),
    _LLM_IS_STREAMING: (_LLM_STREAM, _bool),
    sc.STREAM_COMPLETED: (_SLOT["stream_completed"], _bool),
    sc.HTTP_RESPONSE_STATUS_CODE: (_STATUS, _int),
    _HTTP_STATUS_OLD: (_STATUS_OLD, _int),
    sc.ERROR_TYPE: (_SLOT["error_type"], _str),
    sc.GEN_AI_TIME_TO_FIRST_CHUNK: (_SLOT["ttfc_s"], _float),
    sc.GEN_AI_USAGE_INPUT_TOKENS: (_SLOT["input_tokens"], _count),
    sc.GEN_AI_USAGE_PROMPT_TOKENS: (_PROMPT, _count),
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: (_SLOT["cached_input_tokens"], _count),
    _CACHE_READ_OLD: (_CACHE_READ_OLD_SLOT, _count),
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: (_CACHE_WRITE, _count),
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: (_CACHE_CREATION, _count),
    _CACHE_WRITE_OLD: (_CACHE_WRITE_OLD_SLOT, _count),
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: (_SLOT["output_tokens"], _count),
    sc.GEN_AI_USAGE_COMPLETION_TOKENS: (_COMPLETION, _count),
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: (_SLOT["reasoning_tokens"], _count),
    _REASONING_OLD: (_REASONING_OLD_SLOT, _count),
    sc.USAGE_INPUT_AUDIO_TOKENS: (_SLOT["input_audio_tokens"], _count),
    sc.USAGE_OUTPUT_AUDIO_TOKENS: (_SLOT["output_audio_tokens"], _count),
    sc.OPENAI_RESPONSE_SERVICE_TIER: (_TIER_RESPONSE, _str),
    _OLD_RESP_TIER: (_TIER_RESPONSE_OLD, _str),
    sc.OPENAI_REQUEST_SERVICE_TIER: (_TIER_REQUEST, _str),
    _OLD_REQ_TIER: (_TIER_REQUEST_OLD, _str),
    sc.BATCH: (_BATCH_SLOT, _bool),
    sc.ATTEMPT: (_SLOT["attempt"], _int),
    sc.OPENAI_REQUEST_ID: (_SLOT["request_id"], _str),
    sc.GEN_AI_RESPONSE_ID: (_SLOT["response_id"], _str),
    sc.RATELIMIT_LIMIT_REQUESTS: (_SLOT["ratelimit_limit_requests"], _count),
    sc.RATELIMIT_REMAINING_REQUESTS: (_SLOT["ratelimit_remaining_requests"], _count),
    sc.RATELIMIT_LIMIT_TOKENS: (_SLOT["ratelimit_limit_tokens"], _count),
    sc.RATELIMIT_REMAINING_TOKENS: (_SLOT["ratelimit_remaining_tokens"], _count),
    sc.RATELIMIT_RESET_REQUESTS_S: (_SLOT["ratelimit_reset_requests_s"], _float),
    sc.RATELIMIT_RESET_TOKENS_S: (_SLOT["ratelimit_reset_tokens_s"], _float),
    sc.RETRY_AFTER_S: (_SLOT["retry_after_s"], _float),
    sc.USAGE_SOURCE: (_SLOT["usage_source"], _str),
}


def fast_attribute(key: str, value: Any) -> tuple[int, Any]:
    """The slot a decoded attribute fills in :func:`fast_row` and its coerced value.

    Slot -1 when only :func:`normalize` can handle it: an empty value (presence
    matters there), a tag, or a value whose coercion fails (the rejection names it).
    """
    if value is None:
        return _NORMALIZE, None
    entry = _FAST_KEYS.get(key)
    if entry is None:
        return (_NORMALIZE, None) if key.startswith(_TAG_PREFIX) else (_IGNORED, None)
    slot, coerce = entry
    # Values that are unique per call (ids, remaining counts) come here for every span.
    if coerce is _str and type(value) is str:
        return slot, value or None
    if coerce is _count and type(value) is int and 0 <= value < 1 << 62:
        return slot, value
    try:
        return slot, coerce({key: value}, key)
    except Rejected:
        return _NORMALIZE, None


def fast_row(
    trace_id: bytes,
    span_id: bytes,
    name: str,
    start: int,
    end: int,
    status_error: bool,
    attributes: Iterable[tuple[str, Any, int, Any]],
    service: Any,
) -> tuple[Any, ...] | Literal[False] | None:
    """What :func:`normalize` returns for this span, or ``False`` if it must decide.

    ``attributes`` are (key, value, slot, coerced value), the last two from :func:`fast_attribute`.
    """
    # The first len(ROW_FIELDS) slots are the row's own columns, filled where attributes map onto
    # them one to one; the derived columns are set below from the slots after them.
    v: list[Any] = [None] * _N_SLOTS
    for _key, _value, slot, value in attributes:
        if slot < 0:
            return False
        v[slot] = value
    provider = v[_PROVIDER] or v[_SYSTEM]
    operation = v[_OPERATION]
    if provider is None and operation is None:
        return None
    model = v[_C_RESPONSE_MODEL] or v[_C_REQUEST_MODEL]
    if (
        not model
        or len(trace_id) != 16
        or len(span_id) != 8
        or not any(trace_id)
        or not any(span_id)
        or not 0 < start <= end < 1 << 62
    ):
        return False  # normalize() rejects it with the reason
    if operation is None:
        operation = v[_LLM_OPERATION]
    status = v[_STATUS] if v[_STATUS] is not None else v[_STATUS_OLD]
    v[_C_TRACE_ID] = trace_id.hex()
    v[_C_SPAN_ID] = span_id.hex()
    v[_C_START] = start
    v[_C_END] = end
    v[_C_SERVICE] = service if service is None or type(service) is str else str(service)
    v[_C_PROVIDER] = provider
    v[_C_OPERATION] = operation
    v[_C_API] = v[_API_TYPE] or (_API_BY_OPERATION.get(operation, operation) if operation else None)
    v[_C_SPAN_NAME] = name or None
    v[_C_MODEL] = model
    v[_C_USER] = v[_USER] or v[_REQUEST_USER] or v[_USER_ID_SLOT]
    v[_C_STREAM] = v[_STREAM] if v[_STREAM] is not None else v[_LLM_STREAM]
    v[_C_STATUS] = status
    v[_C_IS_ERROR] = status_error or (status is not None and status >= 400)
    if v[_C_INPUT] is None:
        v[_C_INPUT] = v[_PROMPT]
    if v[_C_CACHED] is None:
        v[_C_CACHED] = v[_CACHE_READ_OLD_SLOT]
    if v[_CACHE_WRITE] is not None:
        v[_C_CACHE_WRITE] = v[_CACHE_WRITE]
    elif v[_CACHE_CREATION] is not None:
        v[_C_CACHE_WRITE] = v[_CACHE_CREATION]
    else:
        v[_C_CACHE_WRITE] = v[_CACHE_WRITE_OLD_SLOT]
    if v[_C_OUTPUT] is None:
        v[_C_OUTPUT] = v[_COMPLETION]
    if v[_C_REASONING] is None:
        v[_C_REASONING] = v[_REASONING_OLD_SLOT]
    v[_C_TIER] = v[_TIER_RESPONSE] or v[_TIER_RESPONSE_OLD] or v[_TIER_REQUEST] or v[_TIER_REQUEST_OLD]
    v[_C_BATCH] = bool(v[_BATCH_SLOT])
    return tuple(v[:_N_ROW])
