"""One OpenAI HTTP attempt: what the request said, what came back, and the span that records it.

A :class:`Call` is created by the ``send`` wrapper before the request goes out and emits exactly one
span: when ``send`` returns for a read body, when ``send`` raises, or, for a streamed body, when the
stream ends (exhaustion, close, error or garbage collection, whichever comes first).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    get_current_span,
)

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
from spendscope.instrument.routes import Route
from spendscope.instrument.sse import summarize_stream

__all__ = ["Call", "DirectRecorder", "Recorder"]

Attributes = dict[str, Any]

# How much of a streamed body is kept to read its end: usage chunks and error events are small;
# the Responses terminal event can be large, so the tail is pinned once that event starts.
TAIL_BYTES = 64 * 1024
_TERMINAL_MARKERS = (b"response.completed", b"response.incomplete", b"response.failed")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)


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
    """Hands a finished span straight to spendscope's own provider's processors.

    A call's span is complete when it is created (every attribute, both timestamps), so the
    mutable-span machinery of ``start_span``/``end`` (locks, attribute revalidation, limits) is pure
    overhead: building the finished :class:`ReadableSpan` costs about a quarter as much. Sampling,
    ids, parentage, resource and scope are the provider's own. Used only with the provider
    spendscope built itself, whose only processor is its batch exporter.
    """

    __slots__ = ("_ids", "_processor", "_resource", "_sampler", "_scope")

    def __init__(self, tracer: Tracer, capture_content: bool, processor: Any) -> None:
        super().__init__(tracer, capture_content)
        self._sampler = tracer.sampler  # type: ignore[attr-defined]
        self._ids = tracer.id_generator  # type: ignore[attr-defined]
        self._resource = tracer.resource  # type: ignore[attr-defined]
        self._scope = tracer._instrumentation_scope  # type: ignore[attr-defined]
        self._processor = processor

    def emit(
        self,
        name: str,
        context: Context | None,
        attrs: Attributes,
        start_ns: int,
        end_ns: int,
        error: str | None,
    ) -> None:
        parent = get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id = parent.trace_id
            parent_context: SpanContext | None = parent
        else:
            trace_id = self._ids.generate_trace_id()
            parent_context = None
        sampled = self._sampler.should_sample(context, trace_id, name, SpanKind.CLIENT, attrs)
        if not sampled.decision.is_sampled():
            return
        span_context = SpanContext(
            trace_id, self._ids.generate_span_id(), False, _SAMPLED, sampled.trace_state
        )
        self._processor.on_end(
            ReadableSpan(
                name,
                span_context,
                parent_context,
                self._resource,
                attrs,
                kind=SpanKind.CLIENT,
                status=Status(StatusCode.ERROR, error) if error else _UNSET,
                start_time=start_ns,
                end_time=end_ns,
                instrumentation_scope=self._scope,
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
        "name",
        "pinned",
        "recorder",
        "response_headers",
        "start_ns",
        "status_code",
        "tail",
        "tail_size",
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
        self.tail: deque[bytes] | None = None
        self.tail_size = 0
        self.pinned = False
        self.response_headers: dict[str, str] = {}
        self._lock: threading.Lock | None = None

    # --- outcomes -----------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """``send`` raised: a transport failure, a timeout, or a cancellation."""
        self.attrs[sc.ERROR_TYPE] = type(exc).__name__
        self._emit(error=str(exc) or type(exc).__name__)

    def response(self, status_code: int, raw_headers: Any, content_type: str, encoding: str) -> None:
        """Status and headers arrived (both paths)."""
        self.status_code = status_code
        self.attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code
        header_attributes(raw_headers, self.attrs)
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
        self.tail = deque()
        self._lock = threading.Lock()

    def chunk(self, data: bytes) -> None:
        """One chunk passed to the app: O(1) bookkeeping, no parsing."""
        tail = self.tail
        if tail is None:
            return
        if not self.first_chunk_ns:
            self.first_chunk_ns = time.time_ns()
            self.head = data[:4096]
        tail.append(data)
        self.tail_size += len(data)
        if self.api == "responses" and not self.pinned and b"event: response." in data:
            for marker in _TERMINAL_MARKERS:
                if marker in data:
                    self.pinned = True
                    break
        # SSE tails are trimmed; a JSON body (with_streaming_response) is kept whole up to the cap.
        if self.tail_size > TAIL_BYTES and not self.pinned and self._is_sse():
            while self.tail_size > TAIL_BYTES and len(tail) > 1:
                self.tail_size -= len(tail.popleft())
        elif self.tail_size > MAX_JSON_BYTES and len(tail) > 1:
            self.tail_size -= len(tail.popleft())

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
        data = b"".join(self.tail or ())
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
