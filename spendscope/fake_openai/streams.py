"""SSE event sequences for Chat Completions, legacy Completions and the Responses API.

Each builder returns the events as ``(event name or None, data text)`` plus where the usage went,
and applies the stream faults that need to know the endpoint (missing usage, in-stream errors,
``[DONE]`` handling). Byte-level faults (CRLF, comments, splitting, truncation) live in ``sse.py``.
The hot chat path is assembled from string templates: benchmarks stream hundreds of deltas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spendscope.fake_openai import bodies
from spendscope.fake_openai.errors import default_error
from spendscope.fake_openai.faults import Fault
from spendscope.fake_openai.ids import hex_id, obfuscation
from spendscope.fake_openai.plan import Plan

__all__ = ["DONE", "StreamOut", "chat_events", "completion_events", "responses_events"]

DONE = "[DONE]"
_NO_FAULT = Fault()
Event = tuple[str | None, str]
_ROLE_DELTA = '{"role":"assistant","content":"","refusal":null}'
# Azure's first chunk: prompt filter results, no choices, empty id and model.
_AZURE_FIRST_CHUNK = (
    '{"choices":[],"created":0,"id":"","model":"","object":"","system_fingerprint":null,"prompt_filter_results":'
    + bodies.dumps(bodies.AZURE_PROMPT_FILTER)
    + "}"
)


@dataclass(slots=True)
class StreamOut:
    events: list[Event]
    usage_index: int | None  # index of the event that carries usage, if any
    error_code: str | None = None  # set when the stream ends in an error


_STREAM_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def _stream_error(fault: Fault) -> dict[str, Any]:
    err = default_error(fault.code or "server_error", message=fault.message)
    inner = err.inner()
    if err.code is None and fault.code is None:
        # the in-stream server error as captured: a different sentence than the HTTP 500 one
        inner["message"] = fault.message or _STREAM_SERVER_ERROR
    return inner


def _finish_chat_like(out: StreamOut, fault: Fault, done_default: bool) -> StreamOut:
    if fault.stream_error is not None:
        cut = max(0, fault.stream_error)
        inner = _stream_error(fault)
        out.events = [*out.events[:cut], (None, bodies.dumps({"error": inner}))]
        if out.usage_index is not None and out.usage_index >= cut:
            out.usage_index = None
        out.error_code = str(inner["code"] or inner["type"])
        return out
    if done_default and not fault.no_done:
        out.events.append((None, DONE))
    return out


def chat_events(plan: Plan, ident: str, created: int, azure: bool, fault: Fault | None) -> StreamOut:
    fault = fault or _NO_FAULT
    legacy = fault.legacy
    dumps = bodies.dumps
    head = (
        f'{{"id":"{ident}","object":"chat.completion.chunk","created":{created},"model":{dumps(plan.model)},'
    )
    if legacy:  # 2024 captures: a fingerprint, no service_tier
        head += '"system_fingerprint":"fp_fake","choices":['
    else:
        head += f'"service_tier":"{plan.service_tier}","system_fingerprint":null,"choices":['
    usage_null = plan.include_usage and not legacy
    obfuscate = plan.obfuscation and not legacy
    tail_base = '],"usage":null' if usage_null else "]"

    def tail(i: int) -> str:
        return tail_base + (f',"obfuscation":"{obfuscation(i)}"}}' if obfuscate else "}")

    events: list[Event] = []
    if azure:
        events.append((None, _AZURE_FIRST_CHUNK))
    for index in range(plan.n):
        role = f'{{"index":{index},"delta":{_ROLE_DELTA},"logprobs":null,"finish_reason":null}}'
        events.append((None, head + role + tail(len(events))))
    for word in plan.words:
        content = dumps(word)
        for index in range(plan.n):
            choice = (
                f'{{"index":{index},"delta":{{"content":{content}}},"logprobs":null,"finish_reason":null}}'
            )
            events.append((None, head + choice + tail(len(events))))
    for index in range(plan.n):
        finish = f'{{"index":{index},"delta":{{}},"logprobs":null,"finish_reason":"{plan.finish_reason}"}}'
        events.append((None, head + finish + tail(len(events))))
    usage_index: int | None = None
    if plan.include_usage and not fault.no_usage:
        usage = dumps(bodies.chat_usage(plan, legacy=legacy))
        obf = f',"obfuscation":"{obfuscation(len(events))}"' if obfuscate else ""
        usage_index = len(events)
        events.append((None, head + '],"usage":' + usage + obf + "}"))
    return _finish_chat_like(StreamOut(events, usage_index), fault, done_default=True)


def completion_events(plan: Plan, ident: str, created: int, fault: Fault | None) -> StreamOut:
    fault = fault or _NO_FAULT
    dumps = bodies.dumps
    model = dumps(plan.model)
    head = f'{{"id":"{ident}","object":"text_completion","created":{created},"choices":['
    tail = f'],"model":{model},"system_fingerprint":null' + (',"usage":null}' if plan.include_usage else "}")
    events: list[Event] = []
    last = len(plan.words) - 1
    finish = dumps(plan.finish_reason)
    for i, word in enumerate(plan.words):
        content = dumps(word)
        reason = finish if i == last else "null"
        for index in range(plan.n):
            choice = f'{{"text":{content},"index":{index},"logprobs":null,"finish_reason":{reason}}}'
            events.append((None, head + choice + tail))
    if not plan.words:
        for index in range(plan.n):
            choice = f'{{"text":"","index":{index},"logprobs":null,"finish_reason":{finish}}}'
            events.append((None, head + choice + tail))
    usage_index: int | None = None
    if plan.include_usage and not fault.no_usage:
        usage_index = len(events)
        usage = dumps(bodies.chat_usage(plan))
        events.append((None, f'{head}],"model":{model},"system_fingerprint":null,"usage":{usage}}}'))
    return _finish_chat_like(StreamOut(events, usage_index), fault, done_default=True)


def responses_events(
    plan: Plan, body: Mapping[str, Any], ident: str, created_at: int, fault: Fault | None
) -> StreamOut:
    """The Responses API event sequence; the terminal event carries usage and the real tier."""
    fault = fault or _NO_FAULT
    dumps = bodies.dumps
    events: list[Event] = []

    def add(kind: str, payload: dict[str, Any]) -> None:
        data = {"type": kind, "sequence_number": len(events), **payload}
        events.append((kind, dumps(data)))

    def response(
        status: str, tier: str | None, output: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> Any:
        return bodies.response_object(
            plan, body, ident, created_at, status=status, tier=tier, output=output, usage=usage
        )

    # The tier is only known at the end: early events report the requested "auto".
    add("response.created", {"response": response("in_progress", "auto", [], None)})
    add("response.in_progress", {"response": response("in_progress", "auto", [], None)})
    output: list[dict[str, Any]] = []
    if plan.extra.get("reasoning_item"):
        rs = bodies.reasoning_item(hex_id("rs_"))
        add("response.output_item.added", {"output_index": 0, "item": rs})
        add("response.output_item.done", {"output_index": 0, "item": rs})
        output.append(rs)
    incomplete = plan.finish_reason == "max_output_tokens"
    if plan.words or not incomplete:
        msg_id = hex_id("msg_")
        out_index = len(output)
        add(
            "response.output_item.added",
            {"output_index": out_index, "item": bodies.message_item(msg_id, "in_progress", None)},
        )
        empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        add(
            "response.content_part.added",
            {"item_id": msg_id, "output_index": out_index, "content_index": 0, "part": empty_part},
        )
        where = f'"item_id":"{msg_id}","output_index":{out_index},"content_index":0,"delta":'
        for word in plan.words:
            seq = len(events)
            obf = f',"obfuscation":"{obfuscation(seq)}"' if plan.obfuscation else ""
            delta = f'{{"type":"response.output_text.delta","sequence_number":{seq},{where}'
            delta += f'{dumps(word)},"logprobs":[]{obf}}}'
            events.append(("response.output_text.delta", delta))
        text = "".join(plan.words)
        add(
            "response.output_text.done",
            {"item_id": msg_id, "output_index": out_index, "content_index": 0, "text": text, "logprobs": []},
        )
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        add(
            "response.content_part.done",
            {"item_id": msg_id, "output_index": out_index, "content_index": 0, "part": part},
        )
        item = bodies.message_item(msg_id, "incomplete" if incomplete else "completed", text)
        add("response.output_item.done", {"output_index": out_index, "item": item})
        output.append(item)
    final_status = "incomplete" if incomplete else "completed"
    final = response(final_status, plan.service_tier, output, bodies.responses_usage(plan))

    if fault.stream_error is not None or fault.flat_error is not None:
        cut = max(0, fault.stream_error if fault.stream_error is not None else fault.flat_error or 0)
        del events[cut:]
        inner = _stream_error(fault)
        if fault.stream_error is not None:
            # The shape seen in the wild: a nested error object (the SDK raises APIError on it) ...
            add("error", {"error": inner})
            failed_error = {"code": inner["code"] or "server_error", "message": inner["message"]}
            failed = bodies.response_object(
                plan,
                body,
                ident,
                created_at,
                status="failed",
                tier=plan.service_tier,
                output=[],
                usage=None,
                error=failed_error,
            )
            add("response.failed", {"response": failed})  # ... followed by the failed response
        else:
            # The spec's flat shape: the SDK yields it as an event and does not raise.
            add("error", {"code": inner["code"] or inner["type"], "message": inner["message"], "param": None})
        return StreamOut(events, None, str(inner["code"] or inner["type"]))
    usage_index: int | None = None
    if not fault.no_usage:
        usage_index = len(events)
        add("response.incomplete" if incomplete else "response.completed", {"response": final})
    if fault.done:
        events.append((None, DONE))
    return StreamOut(events, usage_index)
