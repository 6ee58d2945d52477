"""One OpenAI HTTP attempt: what the request said, what came back, and the span that records it.

A :class:`Call` is created by the ``send`` wrapper before the request goes out and emits exactly one
span: when ``send`` returns for a read body, when ``send`` raises, or, for a streamed body, when the
stream ends (exhaustion, close, error or garbage collection, whichever comes first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, ParentBased
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, get_current_span

from spendscope import semconv as sc
from spendscope.instrument.attribution import Attribution
from spendscope.instrument.parsing import (
    MAX_JSON_BYTES,
    RequestInfo,
    error_code,
    header_attributes,
    parse_json,
    response_attributes,
)
from spendscope.instrument.record import new_record
from spendscope.instrument.routes import Route
from spendscope.instrument.sse import summarize_stream

if TYPE_CHECKING:
    from spendscope.instrument.export import OwnProvider

__all__ = ["Call", "DirectRecorder", "Recorder"]

Attributes = dict[str, Any]

# How much of a streamed body is kept to read its end: usage chunks and error events are small;
# the Responses terminal event can be large, so the tail is pinned once that event starts. The
# tail is trimmed once per TAIL_BYTES appended, so it holds between one and two TAIL_BYTES.
TAIL_BYTES = 64 * 1024
_TERMINAL_MARKERS = (b"response.completed", b"response.incomplete", b"response.failed")


class Recorder:
    """Emits a call's span through the OpenTelemetry API of any tracer provider."""

    __slots__ = ("capture_content", "tracer")

    def __init__(self, tracer: Tracer, capture_content: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content

    def emit(
        self,
        name: str,
        context: Context | None,
        attrs: Attributes,
        start_ns: int,
        end_ns: int,
        error: str | None,
    ) -> None:
        span = self.tracer.start_span(
            name, context=context, kind=SpanKind.CLIENT, attributes=attrs, start_time=start_ns
        )
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end_ns)


class DirectRecorder(Recorder):
    """Hands a finished call straight to spendscope's own pipeline, as one ``SpanRecord``.

    A call's span is complete when it is recorded (every attribute, both timestamps), so the SDK's
    mutable span (locks, attribute revalidation, limits, the processor chain) and even its
    finished ``ReadableSpan`` are pure overhead: the record is queued as it is and encoded to OTLP
    bytes by the export thread. Sampling and ids are the provider's own. Used only with the
    provider spendscope built itself; if someone adds a span processor to that provider, calls go
    through the SDK span path again so that the processor sees them.
    """

    __slots__ = ("_ids", "_parent_based", "_pipe", "_provider", "_sampler")

    def __init__(self, tracer: Tracer, capture_content: bool, provider: OwnProvider) -> None:
        super().__init__(tracer, capture_content)
        self._provider = provider
        self._pipe = provider.pipe
        self._sampler = provider.sampler
        self._ids = provider.id_generator
        # The default sampler (no OTEL_TRACES_SAMPLER) decides by the parent alone: decided here
        # without its call, which costs as much as the rest of the recording.
        self._parent_based = type(self._sampler) is ParentBased and (
            self._sampler.get_description() == DEFAULT_ON.get_description()  # type: ignore[no-untyped-call]
        )

    def emit(
        self,
        name: str,
        context: Context | None,
        attrs: Attributes,
        start_ns: int,
        end_ns: int,
        error: str | None,
    ) -> None:
        if self._provider.extra_processors:
            super().emit(name, context, attrs, start_ns, end_ns, error)
            return
        parent = get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, parent_id, remote = parent.trace_id, parent.span_id, parent.is_remote
        else:
            trace_id, parent_id, remote = self._ids.generate_trace_id(), 0, False
        if self._parent_based:
            if parent_id and not parent.trace_flags.sampled:
                return
            trace_state = parent.trace_state if parent_id else None
        else:
            sampled = self._sampler.should_sample(context, trace_id, name, SpanKind.CLIENT, attrs)
            if not sampled.decision.is_sampled():  # type: ignore[no-untyped-call]
                return
            trace_state = sampled.trace_state
        self._pipe.add(
            new_record(
                (
                    name,
                    trace_id,
                    self._ids.generate_span_id(),
                    parent_id,
                    remote,
                    trace_state,
                    start_ns,
                    end_ns,
                    error,
                    attrs,
                )
            )
        )


class Call:
    __slots__ = (
        "_lock",
        "api",
        "attrs",
        "context",
        "done",
        "first_chunk_ns",
        "head",
        "limit",
        "name",
        "recorder",
        "response_headers",
        "start_ns",
        "status_code",
        "tail",
        "untrimmed",
        "watch_terminal",
    )

    def __init__(
        self,
        recorder: Recorder,
        route: Route,
        request: RequestInfo,
        *,
        host: str,
        port: int | None,
        attempt: int,
        attribution: Attribution | None,
        context: Context | None,
    ) -> None:
        model = request.model or route.deployment
        attrs: Attributes = {
            sc.GEN_AI_PROVIDER_NAME: "azure.ai.openai"
            if route.deployment or host.endswith(".azure.com")
            else "openai",
            sc.GEN_AI_OPERATION_NAME: route.operation,
            sc.OPENAI_API_TYPE: route.api,
            sc.GEN_AI_REQUEST_STREAM: request.stream,
            sc.SERVER_ADDRESS: host,
            sc.ATTEMPT: attempt,
        }
        if model:
            attrs[sc.GEN_AI_REQUEST_MODEL] = model
        if port is not None:
            attrs[sc.SERVER_PORT] = port
        if request.service_tier and request.service_tier != "auto":
            attrs[sc.OPENAI_REQUEST_SERVICE_TIER] = request.service_tier
        user = request.user
        if request.metadata:
            for key, value in request.metadata.items():
                attrs[sc.TAG_PREFIX + key] = value
        if attribution is not None:
            if attribution.user is not None:
                user = attribution.user
            if attribution.feature is not None:
                attrs[sc.FEATURE] = attribution.feature
            for key, value in attribution.tags.items():
                attrs[sc.TAG_PREFIX + key] = value
        if user:
            attrs[sc.USER] = user
        if request.content is not None:
            attrs["gen_ai.input.messages"] = request.content
        self.recorder = recorder
        self.api = route.api
        self.name = f"{route.operation} {model}" if model else route.operation
        self.attrs = attrs
        self.context = context
        self.start_ns = time.time_ns()
        self.done = False
        self.status_code = 0
        self.first_chunk_ns = 0
        self.head = b""
        self.tail: list[bytes] | None = None
        self.untrimmed = 0
        self.limit = TAIL_BYTES
        self.watch_terminal = False
        self.response_headers: dict[str, str] = {}
        self._lock: threading.Lock | None = None

    # --- outcomes -----------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """``send`` raised: a transport failure, a timeout, or a cancellation."""
        self.attrs[sc.ERROR_TYPE] = type(exc).__name__
        self._emit(error=str(exc) or type(exc).__name__)

    def response(self, status_code: int, raw_headers: Any) -> None:
        """Status and headers arrived (both paths)."""
        self.status_code = status_code
        self.attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code
        content_type, encoding = header_attributes(raw_headers, self.attrs)
        self.response_headers = {"content-type": content_type, "content-encoding": encoding}

    def body(self, content: bytes) -> None:
        """A fully read, decoded body (``send(stream=False)``): parse it and emit."""
        attrs = self.attrs
        if self.status_code >= 400:
            attrs[sc.ERROR_TYPE] = error_code(parse_json(content)) or _status_error(self.status_code)
            self._emit(error=f"HTTP {self.status_code}")
            return
        found = False
        if "json" in self.response_headers["content-type"] or content[:1] == b"{":
            data = parse_json(content) if len(content) <= MAX_JSON_BYTES else None
            if isinstance(data, dict):
                found = response_attributes(data, attrs, capture_content=self.recorder.capture_content)
        attrs[sc.USAGE_SOURCE] = "response" if found else "missing"
        self._emit(error=attrs.get(sc.ERROR_TYPE))

    # --- streamed bodies ------------------------------------------------------------------------
    def begin_stream(self) -> None:
        # An SSE tail is kept to TAIL_BYTES; a JSON body (with_streaming_response) up to the parse
        # cap, and so is a Responses stream once its terminal event has started.
        self.limit = TAIL_BYTES if self._is_sse() else MAX_JSON_BYTES
        self.watch_terminal = self.api == "responses" and self.limit == TAIL_BYTES
        self.tail = []
        self._lock = threading.Lock()

    def chunk(self, data: bytes) -> None:
        """One chunk passed to the app: O(1) bookkeeping (amortized), no parsing.

        The stream tee appends chunks to :attr:`tail` itself when nothing needs to look at each
        one (see ``streams.py``); this method is the general case: the first chunk, Responses
        streams, a body read before the tee.
        """
        tail = self.tail
        if tail is None:
            return
        if not self.first_chunk_ns:
            self.first_chunk_ns = time.time_ns()
            self.head = data[:4096]
        tail.append(data)
        if self.watch_terminal and b"event: response." in data:
            self._pin(data)
        self.untrimmed += len(data)
        if self.untrimmed > self.limit:
            self.trim()

    def trim(self) -> None:
        """Keep the last ``limit`` bytes (or the newest chunk whole, if it alone is longer).

        Called once per ``limit`` bytes appended, so the tail holds at most twice ``limit`` and the
        cost per chunk stays constant however long the stream. The list object is kept: the
        stream tee appends to it directly.
        """
        tail = self.tail
        self.untrimmed = 0
        if tail is not None and len(tail) > 1:
            tail[:] = (_last_bytes(tail, self.limit),)

    def _pin(self, data: bytes) -> None:
        for marker in _TERMINAL_MARKERS:
            if marker in data:
                self.limit = MAX_JSON_BYTES
                self.watch_terminal = False
                return

    def _is_sse(self) -> bool:
        return "event-stream" in self.response_headers.get("content-type", "")

    def end_stream(self, *, eof: bool, exc: BaseException | None = None) -> None:
        """The stream ended: read its tail once, then emit. Safe to call more than once."""
        lock = self._lock
        if lock is None or self.done:
            return
        with lock:
            if not self._finished():  # another thread (GC, close) may have won the race
                self._finish_stream(eof, exc)

    def _finished(self) -> bool:
        return self.done

    def _finish_stream(self, eof: bool, exc: BaseException | None) -> None:
        attrs = self.attrs
        data = _last_bytes(self.tail or (), self.limit)
        self.tail = None
        if self.first_chunk_ns:
            attrs[sc.GEN_AI_TIME_TO_FIRST_CHUNK] = (self.first_chunk_ns - self.start_ns) / 1e9
        encoding = self.response_headers.get("content-encoding", "")
        if encoding and data:
            data = _decompress(data, encoding)
        error: str | None = None
        if self.status_code >= 400:
            attrs[sc.ERROR_TYPE] = error_code(parse_json(data)) or _status_error(self.status_code)
            error = f"HTTP {self.status_code}"
            terminal = eof
        elif self._is_sse():
            found, terminal = summarize_stream(data, self.head, self.api, attrs)
            attrs[sc.USAGE_SOURCE] = "stream" if found else "missing"
        else:
            parsed = parse_json(data)
            found = isinstance(parsed, dict) and response_attributes(
                parsed, attrs, capture_content=self.recorder.capture_content
            )
            attrs[sc.USAGE_SOURCE] = "response" if found else "missing"
            terminal = eof
        if exc is not None:
            attrs[sc.ERROR_TYPE] = type(exc).__name__
            error = str(exc) or type(exc).__name__
        elif sc.ERROR_TYPE in attrs and error is None:
            error = str(attrs[sc.ERROR_TYPE])
        attrs[sc.STREAM_COMPLETED] = bool(eof or terminal) and exc is None
        self._emit(error=error)

    # --- the span -------------------------------------------------------------------------------
    def _emit(self, *, error: str | None) -> None:
        self.done = True
        self.recorder.emit(self.name, self.context, self.attrs, self.start_ns, time.time_ns(), error)


def _last_bytes(tail: Sequence[bytes], limit: int) -> bytes:
    """The end of a kept tail: its last ``limit`` bytes, or its newest chunk whole if that is longer.

    One join and one slice: far fewer instructions per chunk than summing chunk lengths in Python
    (the event scan reads the end of the tail and copes with a first event cut anywhere).
    """
    data = b"".join(tail)
    if len(data) <= limit:
        return data
    last = tail[-1]
    return last if len(last) >= limit else data[-limit:]


def _status_error(status: int) -> str:
    return str(status)


def _decompress(data: bytes, encoding: str) -> bytes:
    import zlib

    encoding = encoding.lower()
    try:
        if encoding == "gzip":
            return zlib.decompress(data, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompress(data)
    except zlib.error:
        return b""
    return data
