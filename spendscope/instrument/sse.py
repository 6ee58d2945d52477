"""Reading what a finished (or abandoned) server-sent-event stream said, from its last bytes.

The stream wrapper never parses chunks as they pass: it keeps the tail of the body and, once, at the
end, this module reads the events in that tail: the usage chunk of Chat Completions, the terminal
``response.*`` event of the Responses API, in-stream errors and the ``[DONE]`` marker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from spendscope import semconv as sc
from spendscope.instrument.parsing import response_attributes, usage_attributes

__all__ = ["iter_events", "summarize_stream"]

Attributes = dict[str, Any]

_TERMINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_LAST_EVENTS = 16
_NULL_USAGE = re.compile(r'"usage"\s*:\s*null')
_SET_FINISH = re.compile(r'"finish_reason"\s*:\s*"')


def iter_events(data: bytes, last: int | None = None) -> Iterator[tuple[str | None, str]]:
    """(event type, data payload) of each complete-looking event in ``data`` (only the ``last`` N)."""
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if last is None:
        blocks = text.split("\n\n")
    else:
        blocks = text.rsplit("\n\n", last)
        if len(blocks) > last:
            blocks = blocks[1:]  # the first piece is everything before the last blocks, unsplit
    for block in blocks:
        event: str | None = None
        payload: list[str] = []
        for line in block.split("\n"):
            if line.startswith("data:"):
                payload.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line.startswith("event:"):
                event = line[6:].strip()
        if payload:
            yield event, "\n".join(payload)


def _loads(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _interesting(event: str | None, payload: str) -> bool:
    """Whether an event can carry usage, a finish reason, an error or the terminal response.

    Content deltas are the bulk of a stream and carry none of these (``"usage":null``,
    ``"finish_reason":null``): a substring test skips them without decoding their JSON.
    """
    if event is not None and event in _TERMINAL_RESPONSE_EVENTS:
        return True
    if '"error"' in payload:
        return True
    if '"usage"' in payload and not _NULL_USAGE.search(payload):
        return True
    if '"finish_reason"' in payload and _SET_FINISH.search(payload):
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
    for event, payload in reversed(list(iter_events(tail, _LAST_EVENTS))):
        if payload == "[DONE]":
            terminal = True
            continue
        if not _interesting(event, payload):
            continue
        obj = _loads(payload)
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
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [reasons[i] for i in sorted(reasons)]
    if not identity_done:
        for source_bytes in (head, tail):
            if _identity_from(source_bytes, attrs):
                break
    return usage_found, terminal


def _identity_from(data: bytes, attrs: Attributes) -> bool:
    for _event, payload in iter_events(data):
        if '"model"' not in payload:
            continue
        obj = _loads(payload)
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
