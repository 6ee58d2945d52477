"""Pure parsers: request bodies, response bodies, headers and error bodies into span attributes.

Everything here is defensive: the input is whatever a server or a gateway sent. A value that is
absent, null or of the wrong type is left out, never recorded as 0.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from spendscope import semconv as sc

__all__ = [
    "MAX_JSON_BYTES",
    "RequestInfo",
    "error_code",
    "header_attributes",
    "parse_duration",
    "parse_json",
    "parse_json_text",
    "parse_request",
    "response_attributes",
    "usage_attributes",
]

# Bodies above this are not parsed whole (an embeddings request can be megabytes): the model is
# found by a bounded scan instead and the span records what it can.
MAX_JSON_BYTES = 4 * 1024 * 1024
_MAX_TAGS = 16
_MAX_TAG_LEN = 256
_MAX_CONTENT_CHARS = 16 * 1024

Attributes = dict[str, Any]


class RequestInfo(NamedTuple):
    model: str | None
    stream: bool
    service_tier: str | None
    user: str | None
    metadata: Mapping[str, str] | None
    content: str | None  # captured input, only when content capture is on


_EMPTY_REQUEST = RequestInfo(None, False, None, None, None, None)
_DECODER = json.JSONDecoder()
_MODEL_RE = re.compile(rb'"model"\s*:\s*"([^"\\]{1,256})"')


def parse_json(body: bytes) -> Any:
    """``json.loads`` that answers None for anything undecodable or too large."""
    if not body or len(body) > MAX_JSON_BYTES:
        return None
    try:
        # UTF-8 (what OpenAI and gateways send) decoded and scanned here: json.loads' detection of
        # the encoding of bytes and its whitespace regexes cost more than a typical request's JSON.
        scanned, value = _scan(body.decode("utf-8"))
        if scanned:
            return value
    except UnicodeDecodeError:
        pass
    try:
        return json.loads(body)  # UTF-16/32, a BOM, leading whitespace...
    except ValueError:
        return None


def parse_json_text(text: str) -> Any:
    """``json.loads`` of text that answers None for anything undecodable."""
    scanned, value = _scan(text)
    if scanned:
        return value
    try:
        return json.loads(text)
    except ValueError:
        return None


def _scan(text: str) -> tuple[bool, Any]:
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return False, None
    return end == len(text) or text[end:].isspace(), value


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    # bool is an int subclass; a token count is never a bool.
    return value if type(value) is int else None


def parse_request(body: bytes, *, capture_content: bool = False) -> RequestInfo:
    """Model, stream flag, tier and attribution fields of a JSON request body."""
    if not body:
        return _EMPTY_REQUEST
    if len(body) > MAX_JSON_BYTES:
        match = _MODEL_RE.search(body, 0, 64 * 1024)
        model = match.group(1).decode("utf-8", "replace") if match else None
        return RequestInfo(model, b'"stream":true' in body[-4096:], None, None, None, None)
    data = parse_json(body)
    if not isinstance(data, dict):
        return _EMPTY_REQUEST
    metadata = data.get("metadata")
    tags: dict[str, str] | None = None
    if isinstance(metadata, dict) and metadata:
        tags = {}
        for key, value in metadata.items():
            if len(tags) >= _MAX_TAGS:
                break
            if isinstance(key, str) and isinstance(value, str):
                tags[key[:_MAX_TAG_LEN]] = value[:_MAX_TAG_LEN]
    content = None
    if capture_content:
        captured = data.get("messages", data.get("input", data.get("prompt")))
        if captured is not None:
            content = json.dumps(captured, ensure_ascii=False, default=str)[:_MAX_CONTENT_CHARS]
    return RequestInfo(
        model=_str(data.get("model")),
        stream=data.get("stream") is True,
        service_tier=_str(data.get("service_tier")),
        user=_str(data.get("user")) or _str(data.get("safety_identifier")),
        metadata=tags,
        content=content,
    )


def usage_attributes(usage: Mapping[str, Any], attrs: Attributes) -> None:
    """Token counts of a usage object (chat, completions, Responses, embeddings, audio, images)."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        input_tokens = _int(usage.get("prompt_tokens"))
        output_tokens = _int(usage.get("completion_tokens"))
        in_details = usage.get("prompt_tokens_details")
        out_details = usage.get("completion_tokens_details")
    else:
        input_tokens = _int(usage.get("input_tokens"))
        output_tokens = _int(usage.get("output_tokens"))
        in_details = usage.get("input_tokens_details") or usage.get("input_token_details")
        out_details = usage.get("output_tokens_details") or usage.get("output_token_details")
    if input_tokens is not None:
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if output_tokens is not None:
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    if isinstance(in_details, dict):
        cached = _int(in_details.get("cached_tokens"))
        if cached is not None:
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
        written = _int(in_details.get("cache_write_tokens"))
        if written is not None:
            attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = written
        audio_in = _int(in_details.get("audio_tokens"))
        if audio_in is not None:
            attrs[sc.USAGE_INPUT_AUDIO_TOKENS] = audio_in
    if isinstance(out_details, dict):
        reasoning = _int(out_details.get("reasoning_tokens"))
        if reasoning is not None:
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
        audio_out = _int(out_details.get("audio_tokens"))
        if audio_out is not None:
            attrs[sc.USAGE_OUTPUT_AUDIO_TOKENS] = audio_out


def _finish_reasons(choices: object) -> list[str]:
    reasons: list[str] = []
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict):
                reason = choice.get("finish_reason")
                if isinstance(reason, str) and reason:
                    reasons.append(reason)
    return reasons


def response_attributes(data: Mapping[str, Any], attrs: Attributes, *, capture_content: bool = False) -> bool:
    """Model, id, tier, finish reasons and usage of a decoded response body; True if usage was found."""
    model = _str(data.get("model"))
    if model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    response_id = _str(data.get("id"))
    if response_id:
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    tier = _str(data.get("service_tier"))
    if tier:
        attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
    if data.get("object") == "response":
        status = _str(data.get("status"))
        details = data.get("incomplete_details")
        reason = _str(details.get("reason")) if isinstance(details, dict) else None
        if reason or status:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = (reason or status,)
        error = data.get("error")
        if isinstance(error, dict) and _str(error.get("code")):
            attrs[sc.ERROR_TYPE] = error["code"]
    else:
        reasons = _finish_reasons(data.get("choices"))
        if reasons:
            # A tuple, as the SDK stores sequences (and hashable: the OTLP encoder caches it).
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(reasons)
    if capture_content:
        output = data.get("choices", data.get("output"))
        if output is not None:
            attrs["gen_ai.output.messages"] = json.dumps(output, ensure_ascii=False, default=str)[
                :_MAX_CONTENT_CHARS
            ]
    usage = data.get("usage")
    if isinstance(usage, dict):
        usage_attributes(usage, attrs)
        return True
    return False


def error_code(data: object) -> str | None:
    """The OpenAI error code of an error body (``{"error": {...}}``), else its type."""
    if not isinstance(data, dict):
        return None
    error = data.get("error", data)
    if not isinstance(error, dict):
        return _str(error)
    return _str(error.get("code")) or _str(error.get("type"))


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: str) -> float | None:
    """Seconds of a Go-style duration (``6m0s``, ``120ms``) or a bare number of seconds (Azure)."""
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if number >= 0 and math.isfinite(number) else None
    total = 0.0
    position = 0
    for match in _DURATION_RE.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) and position else None


def _nonneg_int(value: bytes) -> int | None:
    try:
        number = int(value)  # int() takes ASCII digits as bytes and ignores surrounding whitespace
    except ValueError:
        return None
    return number if number >= 0 else None


def _number(value: bytes) -> int | float | None:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


# Response headers read into attributes, by lower-case raw name: (kind, attribute).
_INT, _DURATION, _STR, _NUMBER, _RETRY_MS, _RETRY_S, _CONTENT_TYPE, _CONTENT_ENCODING = range(8)
_HEADERS: dict[bytes, tuple[int, str]] = {
    b"x-ratelimit-limit-requests": (_INT, sc.RATELIMIT_LIMIT_REQUESTS),
    b"x-ratelimit-remaining-requests": (_INT, sc.RATELIMIT_REMAINING_REQUESTS),
    b"x-ratelimit-limit-tokens": (_INT, sc.RATELIMIT_LIMIT_TOKENS),
    b"x-ratelimit-remaining-tokens": (_INT, sc.RATELIMIT_REMAINING_TOKENS),
    b"x-ratelimit-reset-requests": (_DURATION, sc.RATELIMIT_RESET_REQUESTS_S),
    b"x-ratelimit-reset-tokens": (_DURATION, sc.RATELIMIT_RESET_TOKENS_S),
    b"x-request-id": (_STR, sc.OPENAI_REQUEST_ID),
    b"openai-project": (_STR, sc.OPENAI_PROJECT),
    b"openai-organization": (_STR, sc.OPENAI_ORGANIZATION),
    b"openai-processing-ms": (_NUMBER, sc.OPENAI_PROCESSING_MS),
    b"retry-after-ms": (_RETRY_MS, ""),
    b"retry-after": (_RETRY_S, ""),
    b"content-type": (_CONTENT_TYPE, ""),
    b"content-encoding": (_CONTENT_ENCODING, ""),
}
# Reset durations repeat ("0s", "1ms", "6m0s"): parsed once each, in a bounded memo.
_durations: dict[bytes, float | None] = {}
_DURATIONS_MAX = 1024


def _duration(raw: bytes) -> float | None:
    seconds = _durations.get(raw, -1.0)
    if seconds == -1.0:
        seconds = parse_duration(raw.decode("latin-1"))
        if len(_durations) < _DURATIONS_MAX:
            _durations[raw] = seconds
    return seconds


def header_attributes(raw: Iterable[tuple[bytes, bytes]], attrs: Attributes) -> tuple[str, str]:
    """Rate-limit, retry and identity headers into ``attrs``, in one pass over the raw header list.

    Answers the response's content type and content encoding, read in the same pass.
    """
    content_type = encoding = ""
    retry_after_ms: float | None = None
    retry_after: float | None = None
    wanted = _HEADERS
    for raw_key, raw_value in raw:
        entry = wanted.get(raw_key) or wanted.get(raw_key.lower())
        if entry is None:
            continue
        kind, name = entry
        if kind == _INT:
            number = _nonneg_int(raw_value)
            if number is not None:
                attrs[name] = number
        elif kind == _DURATION:
            seconds = _duration(raw_value)
            if seconds is not None:
                attrs[name] = seconds
        elif kind == _STR:
            if raw_value:
                attrs[name] = raw_value.decode("latin-1")[:_MAX_TAG_LEN]
        elif kind == _NUMBER:
            processing = _number(raw_value)
            if processing is not None:
                attrs[name] = processing
        elif kind == _CONTENT_TYPE:
            content_type = raw_value.decode("latin-1")
        elif kind == _CONTENT_ENCODING:
            encoding = raw_value.decode("latin-1")
        elif kind == _RETRY_MS:
            millis = _number(raw_value)
            retry_after_ms = None if millis is None else millis / 1000
        else:  # retry-after: seconds; an HTTP-date form is rare on OpenAI and not worth a date parser here
            seconds_value = _number(raw_value)
            retry_after = None if seconds_value is None else float(seconds_value)
    # The millisecond header is the more precise one: it wins when both arrive.
    if retry_after_ms is not None:
        attrs[sc.RETRY_AFTER_S] = retry_after_ms
    elif retry_after is not None:
        attrs[sc.RETRY_AFTER_S] = retry_after
    return content_type, encoding
