"""JSON response bodies, shaped like real captures (openai-wire.md §3).

Key order follows the captures; clients must not depend on it, but realistic fixtures catch
parsers that do. Bodies are compact JSON, as the API sends them.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import threading
from collections.abc import Mapping
from typing import Any

from spendscope.fake_openai.plan import Plan

__all__ = [
    "AZURE_FILTER_RESULTS",
    "AZURE_PROMPT_FILTER",
    "MODEL_CATALOG",
    "chat_completion",
    "chat_usage",
    "completion_json",
    "dumps",
    "embeddings_json",
    "images_json",
    "message_item",
    "model_json",
    "models_json",
    "moderations_json",
    "reasoning_item",
    "response_object",
    "responses_usage",
    "speech_body",
]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# A 1x1 transparent PNG: the smallest image every client can decode.
_PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()

# An MPEG frame header followed by silence: enough for "is this audio bytes" checks.
_SPEECH_BYTES = b"\xff\xf3\x44\xc4" + b"\x00" * 412
_SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

AZURE_FILTER_RESULTS: dict[str, Any] = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
AZURE_PROMPT_FILTER: list[dict[str, Any]] = [
    {"prompt_index": 0, "content_filter_results": AZURE_FILTER_RESULTS}
]

MODEL_CATALOG: tuple[tuple[str, int, str], ...] = (
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4o-2024-08-06", 1722814719, "system"),
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-4o-mini-2024-07-18", 1721172717, "system"),
    ("gpt-4o-audio-preview", 1727460443, "system"),
    ("gpt-4.1", 1744316542, "system"),
    ("gpt-4.1-2025-04-14", 1744315746, "system"),
    ("gpt-4.1-mini", 1744318173, "system"),
    ("gpt-4.1-nano", 1744321707, "system"),
    ("gpt-5", 1754425777, "system"),
    ("gpt-5-2025-08-07", 1754425867, "system"),
    ("gpt-5-mini", 1754425928, "system"),
    ("gpt-5-nano", 1754426384, "system"),
    ("o3", 1744225308, "system"),
    ("o3-mini", 1737146383, "system"),
    ("o4-mini", 1744225351, "system"),
    ("gpt-3.5-turbo", 1677610602, "openai"),
    ("gpt-3.5-turbo-instruct", 1692901427, "system"),
    ("text-embedding-3-small", 1705948997, "system"),
    ("text-embedding-3-large", 1705953180, "system"),
    ("text-embedding-ada-002", 1671217299, "openai-internal"),
    ("omni-moderation-latest", 1731689265, "system"),
    ("dall-e-3", 1698785189, "system"),
    ("gpt-image-1", 1745517030, "system"),
    ("tts-1", 1681940951, "openai-internal"),
    ("gpt-4o-mini-tts", 1742403959, "system"),
)
_MODEL_INDEX = {m[0]: m for m in MODEL_CATALOG}


def dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)


def chat_usage(plan: Plan, legacy: bool = False) -> dict[str, Any]:
    """``CompletionUsage`` with details (2024-style ``legacy`` carries only reasoning_tokens)."""
    usage: dict[str, Any] = {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }
    if legacy:
        usage["completion_tokens_details"] = {"reasoning_tokens": plan.reasoning_tokens}
        return usage
    usage["prompt_tokens_details"] = {
        "cached_tokens": plan.cached_tokens,
        "audio_tokens": plan.input_audio_tokens,
    }
    usage["completion_tokens_details"] = {
        "reasoning_tokens": plan.reasoning_tokens,
        "audio_tokens": plan.output_audio_tokens,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    return usage


def _chat_message(plan: Plan, text: str, created: int, choice: int) -> dict[str, Any]:
    if plan.audio_out:
        audio = {
            "id": f"audio_fake{choice:04d}{created:x}",
            "data": base64.b64encode(_SPEECH_BYTES[:64]).decode(),
            "expires_at": created + 3600,
            "transcript": text,
        }
        return {"role": "assistant", "content": None, "refusal": None, "audio": audio, "annotations": []}
    return {"role": "assistant", "content": text, "refusal": None, "annotations": []}


def chat_completion(plan: Plan, ident: str, created: int, azure: bool) -> bytes:
    text = "".join(plan.words)
    choices: list[dict[str, Any]] = []
    for index in range(plan.n):
        choice: dict[str, Any] = {
            "index": index,
            "message": _chat_message(plan, text, created, index),
            "logprobs": None,
            "finish_reason": plan.finish_reason,
        }
        if azure:
            choice["content_filter_results"] = AZURE_FILTER_RESULTS
        choices.append(choice)
    body: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": plan.model,
        "choices": choices,
        "usage": chat_usage(plan),
        "service_tier": plan.service_tier,
        "system_fingerprint": None,
    }
    if azure:
        body["prompt_filter_results"] = AZURE_PROMPT_FILTER
    return dumps(body).encode()


def responses_usage(plan: Plan) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_tokens},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }


def reasoning_item(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": []}


def message_item(item_id: str, status: str, text: str | None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def response_object(
    plan: Plan,
    body: Mapping[str, Any],
    ident: str,
    created_at: int,
    *,
    status: str,
    tier: str | None,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A full ``response`` object, echoing the request's settings as the API does."""
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    if effort is None and plan.extra.get("reasoning_item"):
        effort = "medium"
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    metadata = body.get("metadata")
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    return {
        "id": ident,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "billing": {"payer": "developer"},
        "error": error,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": effort, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": tier,
        "store": body.get("store", True) is not False,
        "temperature": temperature if isinstance(temperature, int | float) else 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": top_p if isinstance(top_p, int | float) else 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": metadata if isinstance(metadata, dict) else {},
    }


def completion_json(plan: Plan, ident: str, created: int) -> bytes:
    text = "".join(plan.words)
    choices = [
        {"text": text, "index": i, "logprobs": None, "finish_reason": plan.finish_reason}
        for i in range(plan.n)
    ]
    body = {
        "id": ident,
        "object": "text_completion",
        "created": created,
        "model": plan.model,
        "choices": choices,
        "usage": chat_usage(plan),
        "system_fingerprint": None,
    }
    return dumps(body).encode()


_VECTOR_CACHE: dict[tuple[int, int, bool], str] = {}
_VECTOR_LOCK = threading.Lock()


def _vector(dims: int, seed: int, as_base64: bool) -> str:
    """The JSON text (or base64 float32) of a deterministic unit-ish vector, cached per shape."""
    key = (dims, seed, as_base64)
    cached = _VECTOR_CACHE.get(key)
    if cached is not None:
        return cached
    values = [round(math.sin((i + 1) * (seed + 1) * 0.618) * 0.05, 8) for i in range(dims)]
    if as_base64:
        text = '"' + base64.b64encode(struct.pack(f"<{dims}f", *values)).decode() + '"'
    else:
        text = dumps(values)
    with _VECTOR_LOCK:
        if len(_VECTOR_CACHE) < 512:
            _VECTOR_CACHE[key] = text
    return text


def embeddings_json(plan: Plan) -> bytes:
    dims = int(plan.extra["dimensions"])
    as_base64 = bool(plan.extra["base64"])
    seeds: list[int] = plan.extra["seeds"]
    # Assembled as text so the cached vectors are not re-encoded on every request.
    items = ",".join(
        f'{{"object":"embedding","index":{i},"embedding":{_vector(dims, seed, as_base64)}}}'
        for i, seed in enumerate(seeds)
    )
    tokens = plan.input_tokens
    usage = f'{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}'
    return f'{{"object":"list","data":[{items}],"model":{dumps(plan.model)},"usage":{usage}}}'.encode()


_MOD_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def moderations_json(plan: Plan, ident: str) -> bytes:
    result = {
        "flagged": False,
        "categories": dict.fromkeys(_MOD_CATEGORIES, False),
        "category_scores": dict.fromkeys(_MOD_CATEGORIES, 1e-06),
        "category_applied_input_types": {c: ["text"] for c in _MOD_CATEGORIES},
    }
    return dumps({"id": ident, "model": plan.model, "results": [result] * max(1, plan.n)}).encode()


def images_json(plan: Plan, created: int, prompt: str) -> bytes:
    if plan.extra.get("b64"):
        item: dict[str, Any] = {"b64_json": _PNG_1X1}
    else:
        item = {"url": "https://fake-openai.invalid/images/1x1.png"}
    if plan.request_model == "dall-e-3":
        item["revised_prompt"] = prompt
    body: dict[str, Any] = {"created": created, "data": [item] * plan.images}
    if plan.request_model.startswith("gpt-image"):
        body["usage"] = {
            "input_tokens": plan.input_tokens,
            "input_tokens_details": {"text_tokens": plan.input_tokens, "image_tokens": 0},
            "output_tokens": plan.output_tokens,
            "total_tokens": plan.input_tokens + plan.output_tokens,
        }
    return dumps(body).encode()


def speech_body(plan: Plan) -> tuple[str, bytes]:
    fmt = str(plan.extra.get("format", "mp3"))
    return _SPEECH_TYPES.get(fmt, "application/octet-stream"), _SPEECH_BYTES


def _model_dict(entry: tuple[str, int, str]) -> dict[str, Any]:
    return {"id": entry[0], "object": "model", "created": entry[1], "owned_by": entry[2]}


def models_json() -> bytes:
    return dumps({"object": "list", "data": [_model_dict(m) for m in MODEL_CATALOG]}).encode()


def model_json(model_id: str) -> bytes | None:
    entry = _MODEL_INDEX.get(model_id)
    return None if entry is None else dumps(_model_dict(entry)).encode()
