"""Turn an inference request into a :class:`Plan`: what the fake will answer and bill.

A plan is computed before any byte is written, so the ledger row can be appended before the
reply goes out and a test that has just read the reply always finds its row.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spendscope.fake_openai import tokens
from spendscope.fake_openai.errors import ApiError, default_error

__all__ = [
    "CACHED_TOKENS_HEADER",
    "CHUNKS_HEADER",
    "MAX_CHUNKS",
    "Plan",
    "plan_chat",
    "plan_completions",
    "plan_embeddings",
    "plan_images",
    "plan_moderations",
    "plan_responses",
    "plan_speech",
    "response_tier",
]

CACHED_TOKENS_HEADER = "x-fake-cached-tokens"  # N: report min(N, prompt) cached prompt tokens
CHUNKS_HEADER = "x-fake-chunks"  # N: the reply has N content deltas (and N text output tokens)
MAX_CHUNKS = 100_000
_MAX_N = 128
_UNKNOWN_MODEL_PREFIXES = ("no-such-", "nonexistent")  # how a test asks for a 404 model_not_found
_LEGACY_COMPLETIONS_MAX_TOKENS = 16  # the legacy endpoint's documented default

_EMBEDDING_DIMS = {"text-embedding-3-large": 3072}
_DEFAULT_EMBEDDING_DIMS = 1536


@dataclass(slots=True)
class Plan:
    """Everything needed to render one reply and its ledger row."""

    endpoint: str
    request_model: str
    model: str
    stream: bool = False
    service_tier: str | None = "default"
    include_usage: bool = False
    obfuscation: bool = True
    n: int = 1
    words: tuple[str, ...] = ()  # content deltas of each choice
    finish_reason: str = "stop"
    input_tokens: int = 0
    cached_tokens: int = 0
    input_audio_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    output_audio_tokens: int = 0
    audio_out: bool = False
    images: int = 0
    characters: int = 0
    rate_tokens: int = 0  # what the token bucket is charged
    user_id: str | None = None
    error: ApiError | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def response_tier(requested: object) -> str:
    """The tier a response reports for the requested one (``fast`` is reported as ``priority``)."""
    if requested == "flex":
        return "flex"
    if requested in ("priority", "fast"):
        return "priority"
    if requested in ("scale", "ultrafast"):
        return str(requested)
    return "default"


def _int_header(headers: Mapping[str, str], name: str, default: int, high: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        return max(0, min(high, int(raw)))
    except ValueError:
        return default


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _user_of(body: Mapping[str, Any]) -> str | None:
    for key in ("user", "safety_identifier"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _missing(param: str) -> ApiError:
    return ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        "invalid_request_error",
        param,
        "missing_required_parameter",
    )


def _model_of(body: Mapping[str, Any], deployment: str | None) -> str | None:
    model = body.get("model")
    if isinstance(model, str) and model:
        return model
    return deployment  # Azure puts the deployment in the path


def _base(endpoint: str, body: Mapping[str, Any], deployment: str | None) -> Plan:
    model = _model_of(body, deployment)
    if model is None:
        plan = Plan(endpoint=endpoint, request_model="", model="")
        plan.error = ApiError(400, "you must provide a model parameter", "invalid_request_error", None, None)
        return plan
    plan = Plan(endpoint=endpoint, request_model=model, model=tokens.snapshot_for(model))
    plan.user_id = _user_of(body)
    if model.startswith(_UNKNOWN_MODEL_PREFIXES):
        plan.error = default_error("model_not_found", model=model)
    return plan


def _check_context(plan: Plan) -> None:
    window = tokens.context_window(plan.request_model)
    if plan.input_tokens > window and plan.error is None:
        plan.error = default_error("context_length_exceeded", prompt_tokens=plan.input_tokens, context=window)


def _cached(headers: Mapping[str, str], prompt: int) -> int:
    return min(prompt, _int_header(headers, CACHED_TOKENS_HEADER, 0, prompt))


def plan_chat(body: Mapping[str, Any], headers: Mapping[str, str], deployment: str | None = None) -> Plan:
    plan = _base("chat.completions", body, deployment)
    if plan.error is not None:
        return plan
    messages = body.get("messages")
    if not isinstance(messages, list):
        plan.error = _missing("messages")
        return plan
    model = plan.request_model
    plan.stream = body.get("stream") is True
    options = body.get("stream_options")
    if isinstance(options, Mapping):
        plan.include_usage = options.get("include_usage") is True
        plan.obfuscation = options.get("include_obfuscation") is not False
    plan.service_tier = response_tier(body.get("service_tier"))
    n = _positive_int(body.get("n")) or 1
    plan.n = min(n, _MAX_N)
    prompt, prompt_audio = tokens.count_chat_input(messages, body.get("tools"))
    plan.input_tokens = prompt
    plan.input_audio_tokens = prompt_audio
    plan.cached_tokens = _cached(headers, prompt)
    _check_context(plan)

    modalities = body.get("modalities")
    plan.audio_out = tokens.is_audio_model(model) and isinstance(modalities, list) and "audio" in modalities
    words = _int_header(headers, CHUNKS_HEADER, tokens.DEFAULT_REPLY_WORDS, MAX_CHUNKS)
    reasoning = tokens.reasoning_tokens_for(model, body.get("reasoning_effort"))
    per_word = 1 + (tokens.AUDIO_TOKENS_PER_WORD if plan.audio_out else 0)
    limit = _positive_int(body.get("max_completion_tokens"))
    if limit is None:
        limit = _positive_int(body.get("max_tokens"))
    kept = words
    if limit is not None:
        reasoning = min(reasoning, limit)
        kept = min(words, (limit - reasoning) // per_word)
        if kept < words or reasoning == limit:
            plan.finish_reason = "length"
    plan.words = tokens.reply_words(kept)
    plan.reasoning_tokens = reasoning * plan.n
    plan.output_audio_tokens = kept * tokens.AUDIO_TOKENS_PER_WORD * plan.n if plan.audio_out else 0
    plan.output_tokens = plan.n * (kept * per_word + reasoning)
    plan.rate_tokens = prompt + (limit if limit is not None else plan.output_tokens)
    return plan


def plan_responses(body: Mapping[str, Any], headers: Mapping[str, str]) -> Plan:
    plan = _base("responses", body, None)
    if plan.error is not None:
        return plan
    model = plan.request_model
    if "input" not in body and "prompt" not in body and "previous_response_id" not in body:
        plan.error = _missing("input")
        return plan
    plan.stream = body.get("stream") is True
    plan.include_usage = True  # Responses always report usage in the terminal event
    options = body.get("stream_options")
    if isinstance(options, Mapping):
        plan.obfuscation = options.get("include_obfuscation") is not False
    plan.service_tier = response_tier(body.get("service_tier"))
    prompt = tokens.count_responses_input(body.get("input"), body.get("instructions"), body.get("tools"))
    plan.input_tokens = prompt
    plan.cached_tokens = _cached(headers, prompt)
    _check_context(plan)
    reasoning_opts = body.get("reasoning")
    effort = reasoning_opts.get("effort") if isinstance(reasoning_opts, Mapping) else None
    reasoning = tokens.reasoning_tokens_for(model, effort)
    words = _int_header(headers, CHUNKS_HEADER, tokens.DEFAULT_REPLY_WORDS, MAX_CHUNKS)
    limit = _positive_int(body.get("max_output_tokens"))
    kept = words
    if limit is not None:
        reasoning = min(reasoning, limit)
        kept = min(words, limit - reasoning)
        if kept < words or (reasoning == limit and words):
            plan.finish_reason = "max_output_tokens"
    plan.words = tokens.reply_words(kept)
    plan.reasoning_tokens = reasoning
    plan.output_tokens = kept + reasoning
    plan.rate_tokens = prompt + (limit if limit is not None else plan.output_tokens)
    plan.extra["reasoning_item"] = tokens.is_reasoning_model(model)
    return plan


def plan_completions(
    body: Mapping[str, Any], headers: Mapping[str, str], deployment: str | None = None
) -> Plan:
    plan = _base("completions", body, deployment)
    if plan.error is not None:
        return plan
    if "prompt" not in body:
        plan.error = _missing("prompt")
        return plan
    plan.stream = body.get("stream") is True
    options = body.get("stream_options")
    if isinstance(options, Mapping):
        plan.include_usage = options.get("include_usage") is True
    plan.service_tier = None  # the legacy endpoint has no service_tier field
    plan.n = min(_positive_int(body.get("n")) or 1, _MAX_N)
    prompt = tokens.count_prompt(body.get("prompt"))
    plan.input_tokens = prompt
    plan.cached_tokens = _cached(headers, prompt)
    _check_context(plan)
    words = _int_header(headers, CHUNKS_HEADER, tokens.DEFAULT_REPLY_WORDS, MAX_CHUNKS)
    limit = _positive_int(body.get("max_tokens"))
    if limit is None:
        limit = _LEGACY_COMPLETIONS_MAX_TOKENS
    kept = min(words, limit)
    if kept < words:
        plan.finish_reason = "length"
    plan.words = tokens.reply_words(kept)
    plan.output_tokens = kept * plan.n
    plan.rate_tokens = prompt + limit * plan.n
    return plan


def plan_embeddings(
    body: Mapping[str, Any], headers: Mapping[str, str], deployment: str | None = None
) -> Plan:
    plan = _base("embeddings", body, deployment)
    if plan.error is not None:
        return plan
    value = body.get("input")
    if value is None:
        plan.error = _missing("input")
        return plan
    counts = tokens.count_embedding_input(value)
    plan.service_tier = None
    plan.input_tokens = sum(counts)
    plan.rate_tokens = plan.input_tokens
    dims = _positive_int(body.get("dimensions")) or _EMBEDDING_DIMS.get(
        plan.request_model, _DEFAULT_EMBEDDING_DIMS
    )
    plan.extra["dimensions"] = min(dims, 4096)
    plan.extra["base64"] = body.get("encoding_format") == "base64"
    # A cheap per-input seed so different texts get different (still deterministic) vectors.
    inputs = value if isinstance(value, list) and value and not isinstance(value[0], int) else [value]
    plan.extra["seeds"] = [zlib.crc32(repr(v).encode()) & 7 for v in inputs]
    if any(c > tokens.context_window(plan.request_model) for c in counts):
        plan.error = default_error(
            "context_length_exceeded",
            prompt_tokens=max(counts),
            context=tokens.context_window(plan.request_model),
        )
    return plan


def plan_moderations(body: Mapping[str, Any], headers: Mapping[str, str]) -> Plan:
    body = dict(body)
    body.setdefault("model", "omni-moderation-latest")
    plan = _base("moderations", body, None)
    if plan.error is not None:
        return plan
    value = body.get("input")
    if value is None:
        plan.error = _missing("input")
        return plan
    counts = tokens.count_embedding_input(value) or [0]
    plan.service_tier = None
    plan.input_tokens = sum(counts)
    plan.n = len(counts)
    plan.rate_tokens = plan.input_tokens
    return plan


def plan_images(body: Mapping[str, Any], headers: Mapping[str, str], deployment: str | None = None) -> Plan:
    body = dict(body)
    body.setdefault("model", deployment or "dall-e-2")
    plan = _base("images.generations", body, None)
    if plan.error is not None:
        return plan
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        plan.error = _missing("prompt")
        return plan
    plan.service_tier = None
    plan.n = min(_positive_int(body.get("n")) or 1, 10)
    plan.images = plan.n
    size = body.get("size")
    plan.extra["size"] = size if isinstance(size, str) else "1024x1024"
    plan.extra["source"] = "image.generation"
    plan.extra["b64"] = body.get("response_format") == "b64_json" or plan.request_model.startswith(
        "gpt-image"
    )
    if plan.request_model.startswith("gpt-image"):  # token-billed image models report usage
        plan.input_tokens = tokens.count_text(prompt)
        plan.output_tokens = 272 * plan.n
    plan.rate_tokens = plan.input_tokens
    return plan


def plan_speech(body: Mapping[str, Any], headers: Mapping[str, str], deployment: str | None = None) -> Plan:
    plan = _base("audio.speech", body, deployment)
    if plan.error is not None:
        return plan
    text = body.get("input")
    if not isinstance(text, str):
        plan.error = _missing("input")
        return plan
    plan.service_tier = None
    plan.characters = len(text)
    fmt = body.get("response_format")
    plan.extra["format"] = fmt if isinstance(fmt, str) else "mp3"
    if plan.request_model.startswith("gpt-4o"):  # the token-billed TTS model
        plan.input_tokens = tokens.count_text(text)
        plan.output_audio_tokens = plan.output_tokens = 10 * plan.characters // 4 + 10
    return plan
