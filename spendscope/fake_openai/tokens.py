"""Deterministic token arithmetic and model facts for the fake OpenAI server.

Nothing here tries to match a real tokenizer: tests need counts that are stable, cheap to compute and
easy to predict by hand. Text costs ``ceil(utf8 bytes / 4)`` tokens, each chat message adds a fixed
overhead, and every content delta of a reply is one output token.
"""

from __future__ import annotations

import json

__all__ = [
    "AUDIO_TOKENS_PER_WORD",
    "DEFAULT_REPLY_WORDS",
    "IMAGE_PART_TOKENS",
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "context_window",
    "count_chat_input",
    "count_embedding_input",
    "count_prompt",
    "count_responses_input",
    "count_text",
    "is_audio_model",
    "is_reasoning_model",
    "reasoning_tokens_for",
    "reply_words",
    "snapshot_for",
]

# Per message and per reply, in the spirit of OpenAI's own chat formatting overhead.
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3
IMAGE_PART_TOKENS = 85  # what a low-detail image costs in the real API
AUDIO_TOKENS_PER_WORD = 4
DEFAULT_REPLY_WORDS = 8

# Aliases the real API answers with a dated snapshot in the response's `model` field.
_SNAPSHOTS: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o-audio-preview": "gpt-4o-audio-preview-2024-12-17",
    "gpt-4o-mini-audio-preview": "gpt-4o-mini-audio-preview-2024-12-17",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "omni-moderation-latest": "omni-moderation-2024-09-26",
    "text-moderation-latest": "text-moderation-007",
}

_CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4", 8_192),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("text-embedding", 8_192),
)
_DEFAULT_CONTEXT = 128_000

# Reasoning effort -> reasoning tokens; fixed numbers so a test can predict them.
_REASONING_BY_EFFORT: dict[str, int] = {"none": 0, "minimal": 0, "low": 16, "medium": 64, "high": 256}
_DEFAULT_EFFORT = "medium"

_WORDS: tuple[str, ...] = (
    "The",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "a",
    "fake",
    "server",
    "counts",
    "every",
    "token",
)


def snapshot_for(model: str) -> str:
    """The model name a response reports for a request model."""
    return _SNAPSHOTS.get(model, model)


def is_reasoning_model(model: str) -> bool:
    if model.startswith("gpt-5"):
        return "-chat" not in model  # gpt-5-chat-latest is a non-reasoning model
    return model[:2] in ("o1", "o3", "o4")


def is_audio_model(model: str) -> bool:
    return "audio" in model


def context_window(model: str) -> int:
    for prefix, window in _CONTEXT_WINDOWS:
        if model.startswith(prefix):
            return window
    return _DEFAULT_CONTEXT


def reasoning_tokens_for(model: str, effort: object) -> int:
    if not is_reasoning_model(model):
        return 0
    key = effort if isinstance(effort, str) else _DEFAULT_EFFORT
    return _REASONING_BY_EFFORT.get(key, _REASONING_BY_EFFORT[_DEFAULT_EFFORT])


def count_text(text: str) -> int:
    """``ceil(utf8 bytes / 4)``: a stand-in for a tokenizer that anyone can compute by hand."""
    return (len(text.encode()) + 3) // 4


def _count_content(content: object) -> tuple[int, int, int]:
    """(text tokens, audio tokens, image tokens) of a message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return count_text(content), 0, 0
    text = audio = image = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind in ("text", "input_text", "output_text"):
                value = part.get("text")
                if isinstance(value, str):
                    text += count_text(value)
            elif kind in ("image_url", "input_image"):
                image += IMAGE_PART_TOKENS
            elif kind == "input_audio":
                data = part.get("input_audio")
                raw = data.get("data") if isinstance(data, dict) else None
                # Audio tokens grow with the payload; a fixed floor keeps tiny clips non-zero.
                audio += 10 + (len(raw) // 1000 if isinstance(raw, str) else 0)
    return text, audio, image


def count_chat_input(messages: object, tools: object = None) -> tuple[int, int]:
    """(prompt tokens, of which audio) for a chat ``messages`` list."""
    total = REPLY_PRIMING
    audio_total = 0
    if isinstance(messages, list):
        for message in messages:
            total += MESSAGE_OVERHEAD
            if not isinstance(message, dict):
                continue
            text, audio, image = _count_content(message.get("content"))
            total += text + audio + image
            audio_total += audio
            name = message.get("name")
            if isinstance(name, str):
                total += count_text(name)
    if tools:
        total += count_text(json.dumps(tools, separators=(",", ":")))
    return total, audio_total


def count_responses_input(input_value: object, instructions: object = None, tools: object = None) -> int:
    """Prompt tokens for a Responses API request (``input`` string or list of items)."""
    total = 0
    if isinstance(instructions, str):
        total += MESSAGE_OVERHEAD + count_text(instructions)
    if isinstance(input_value, str):
        total += MESSAGE_OVERHEAD + count_text(input_value)
    elif isinstance(input_value, list):
        for item in input_value:
            total += MESSAGE_OVERHEAD
            if isinstance(item, dict):
                text, audio, image = _count_content(item.get("content"))
                total += text + audio + image
                output = item.get("output")  # function_call_output items
                if isinstance(output, str):
                    total += count_text(output)
    if tools:
        total += count_text(json.dumps(tools, separators=(",", ":")))
    return total


def _count_one_prompt(value: object) -> int:
    if isinstance(value, str):
        return count_text(value)
    if isinstance(value, list):  # a pre-tokenized input: a list of token ids
        return len(value)
    return 0


def count_prompt(prompt: object) -> int:
    """Tokens of a legacy completions ``prompt`` (string, list of strings, token list or lists)."""
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return sum(_count_one_prompt(p) for p in prompt)
    return _count_one_prompt(prompt)


def count_embedding_input(value: object) -> list[int]:
    """Tokens per embedding input (the request may embed several inputs at once)."""
    if isinstance(value, str):
        return [count_text(value)]
    if isinstance(value, list):
        if value and isinstance(value[0], int):
            return [len(value)]
        return [_count_one_prompt(v) for v in value]
    return []


_WORD_CACHE: dict[tuple[int, int], tuple[str, ...]] = {}
_WORD_CACHE_MAX = 256


def reply_words(count: int, offset: int = 0) -> tuple[str, ...]:
    """The deltas of a deterministic reply: word i, with a leading space after the first."""
    key = (count, offset)
    cached = _WORD_CACHE.get(key)
    if cached is not None:
        return cached
    n = len(_WORDS)
    words = tuple((" " if i else "") + _WORDS[(i + offset) % n] for i in range(count))
    if len(_WORD_CACHE) < _WORD_CACHE_MAX:  # bounded: benchmarks use few distinct sizes
        _WORD_CACHE[key] = words
    return words
