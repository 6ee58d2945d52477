"""Reading what a finished (or abandoned) server-sent-event stream said, from its last bytes.

The stream wrapper never parses chunks as they pass: it keeps the tail of the body and, once, at the
end, this module reads the events in that tail: the usage chunk of Chat Completions, the terminal
``response.*`` event of the Responses API, in-stream errors and the ``[DONE]`` marker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from spendscope import semconv as sc
from spendscope.instrument.parsing import parse_json_text, response_attributes, usage_attributes

__all__ = ["iter_events", "summarize_stream"]

Attributes = dict[str, Any]

_TERMINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_LAST_EVENTS = 16
_NULL_USAGE = re.compile(r'"usage"\s*:\s*null')
_SET_FINISH = re.compile(r'"finish_reason"\s*:\s*"')


def _blocks(data: bytes, last: int | None) -> list[str]:
    """The text of the event blocks of ``data`` (only the ``last`` N, when given)."""
    if last is not None and b"\r" not in data:
        # Only a window at the end is decoded and split, widened until it holds the last N blocks:
        # what ``text.rsplit("\n\n", last)`` keeps, without decoding a 64 KiB tail.
        window = 4096
        while True:
            blocks = data[-window:].decode("utf-8", "replace").rsplit("\n\n", last)
            if len(blocks) > last:
                return blocks[1:]  # the first piece is everything before the last blocks, unsplit
            if window >= len(data):
                return blocks
            window *= 4
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if last is None:
        return text.split("\n\n")
    blocks = text.rsplit("\n\n", last)
    return blocks[1:] if len(blocks) > last else blocks  # the first piece is everything before


def _event(block: str) -> tuple[str | None, str] | None:
    event: str | None = None
    payload: list[str] = []
    for line in block.split("\n"):
        if line.startswith("data:"):
            payload.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
    return (event, "\n".join(payload)) if payload else None


def iter_events(data: bytes, last: int | None = None) -> Iterator[tuple[str | None, str]]:
    """(event type, data payload) of each complete-looking event in ``data`` (only the ``last`` N)."""
    for block in _blocks(data, last):
        parsed = _event(block)
        if parsed is not None:
            yield parsed


def _candidates(blocks: list[str]) -> list[str] | None:
    """The blocks that can matter, found by a few scans of the whole window; None: look at each.

    A Chat Completions stream ends in content deltas whose ``"usage":null`` and
    ``"finish_reason":null`` say they carry nothing. When every usage and finish reason in the
    window is written in that compact form, and nothing else that ``_interesting`` looks for is
    there, only the blocks with a set usage, a set finish reason or ``[DONE]`` can matter.
    """
    text = "\n\n".join(blocks)
    if "event:" in text or '"error"' in text or '"type":"response.' in text:
        return None
    starts: set[int] = set()
    hits = []  # occurrences of each marker, counted by the same scan that finds them
    for marker in ('"usage":{', '"finish_reason":"', "[DONE]"):
        count = 0
        position = text.find(marker)
        while position >= 0:
            count += 1
            before = text.rfind("\n\n", 0, position)
            starts.add(before + 2 if before >= 0 else 0)
            position = text.find(marker, position + len(marker))
        hits.append(count)
    if (
        text.count('"usage"') != text.count('"usage":null') + hits[0]
        or text.count('"finish_reason"') != text.count('"finish_reason":null') + hits[1]
    ):
        return None
    found = []
    for start in sorted(starts):
        end = text.find("\n\n", start)
        found.append(text[start:] if end < 0 else text[start:end])
    return found


def _interesting(event: str | None, payload: str) -> bool:
    """Whether an event can carry usage, a finish reason, an error or the terminal response.

    Content deltas are the bulk of a stream and carry none of these (``"usage":null``,
    ``"finish_reason":null``): a substring test skips them without decoding their JSON.
    """
    if event is not None and event in _TERMINAL_RESPONSE_EVENTS:
        return True
    if '"error"' in payload:
        return True
    # The compact forms (what OpenAI sends) are counted first: the patterns only run when they differ.
    if '"usage"' in payload and '"usage":null' not in payload and not _NULL_USAGE.search(payload):
        return True
    if (
        '"finish_reason"' in payload
        and payload.count('"finish_reason"') != payload.count('"finish_reason":null')
        and _SET_FINISH.search(payload)
    ):
        return True
    return (
        event is None
        and '"type":"response.' in payload
        and any(t in payload for t in _TERMINAL_RESPONSE_EVENTS)
    )


def summarize_stream(tail: bytes, head: bytes, api: str, attrs: Attributes) -> tuple[bool, bool]:
    """Add what the stream reported to ``attrs``; answer (usage found, terminal event seen).

    ``tail`` is the last part of the body (everything, for short streams); ``head`` is the first
    chunk, used for the model and id when the tail does not carry them.
    """
    usage_found = False
    terminal = False
    reasons: dict[int, str] = {}
    identity_done = False
    # What a stream reports about itself is in its last few events: [DONE], the usage chunk, one
    # finish chunk per choice, or the terminal Responses event. Reading only those keeps the cost
    # per stream constant, however many content deltas came before.
    blocks = _blocks(tail, _LAST_EVENTS)
    candidates = _candidates(blocks)
    for block in reversed(blocks if candidates is None else candidates):
        parsed = _event(block)
        if parsed is None:
            continue
        event, payload = parsed
        if payload == "[DONE]":
            terminal = True
            continue
        if not _interesting(event, payload):
            continue
        obj = parse_json_text(payload)
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type") if event is None else event
        if kind in _TERMINAL_RESPONSE_EVENTS:
            terminal = True
            response = obj.get("response")
            if isinstance(response, dict) and not usage_found:
                usage_found = response_attributes(response, attrs)
                identity_done = True
            continue
        if kind == "error" or (event is None and "error" in obj and "choices" not in obj):
            if sc.ERROR_TYPE not in attrs:
                nested = obj.get("error")
                code = (
                    nested.get("code") or nested.get("type") if isinstance(nested, dict) else obj.get("code")
                )
                attrs[sc.ERROR_TYPE] = code if isinstance(code, str) and code else "stream_error"
            continue
        if not usage_found:
            usage = obj.get("usage")
            if isinstance(usage, dict):
                usage_attributes(usage, attrs)
                usage_found = True
        choices = obj.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    reason = choice.get("finish_reason")
                    index = choice.get("index", 0)
                    if isinstance(reason, str) and reason and type(index) is int and index not in reasons:
                        reasons[index] = reason
        if not identity_done and obj.get("model"):
            _identity(obj, attrs)
            identity_done = True
    if reasons and sc.GEN_AI_RESPONSE_FINISH_REASONS not in attrs:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(reasons[i] for i in sorted(reasons))
    if not identity_done:
        for source_bytes in (head, tail):
            if _identity_from(source_bytes, attrs):
                break
    return usage_found, terminal


def _identity_from(data: bytes, attrs: Attributes) -> bool:
    for _event, payload in iter_events(data):
        if '"model"' not in payload:
            continue
        obj = parse_json_text(payload)
        if isinstance(obj, dict):
            inner = obj.get("response")
            source = inner if isinstance(inner, dict) else obj
            if source.get("model"):
                _identity(source, attrs)
                return True
    return False


def _identity(obj: dict[str, Any], attrs: Attributes) -> None:
    model = obj.get("model")
    if isinstance(model, str) and model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    response_id = obj.get("id")
    if isinstance(response_id, str) and response_id:
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    tier = obj.get("service_tier")
    # Responses streams say "auto" until the terminal event names the tier that served the call.
    if isinstance(tier, str) and tier and tier != "auto":
        attrs.setdefault(sc.OPENAI_RESPONSE_SERVICE_TIER, tier)
