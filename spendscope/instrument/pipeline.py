"""spendscope's own span processor: a bounded queue and one export thread.

The app never waits on the collector: a finished call's :class:`SpanRecord` is appended to a bounded
queue and a worker thread exports it. When the collector is down the queue fills, further spans are
dropped and counted (not queued without bound, not retried forever), and the failure is logged once
per outage. Records are encoded straight to OTLP bytes (:mod:`spendscope.instrument.otlp`) and sent
through the OTLP/HTTP exporter's client; should that internal change, or for ordinary SDK spans
(app spans, when spendscope's provider is the global one), the exporter's public ``export`` is used.

Settings follow the batch span processor's: ``OTEL_BSP_MAX_QUEUE_SIZE`` (2048),
``OTEL_BSP_SCHEDULE_DELAY`` (1000 ms here), ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (512).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from spendscope.instrument.health import HEALTH
from spendscope.instrument.otel_internals import bytes_sender, suppress_instrumentation_key
from spendscope.instrument.otlp import encode_records, envelope
from spendscope.instrument.record import SpanRecord, to_readable_spans

__all__ = ["SHUTDOWN_WAIT_S", "Settings", "SpanPipe"]

_log = logging.getLogger("spendscope")
SHUTDOWN_WAIT_S = 3.0  # the most a shutdown (uninstrument, interpreter exit) waits for the last export


class Settings(NamedTuple):
    """The queue's bounds, named and defaulted as the SDK's batch span processor's."""

    max_queue_size: int = 2048
    schedule_delay_millis: int = 1000
    max_export_batch_size: int = 512

    @classmethod
    def from_env(cls) -> Settings:
        default = cls()
        queue = _env_int("OTEL_BSP_MAX_QUEUE_SIZE", default.max_queue_size)
        return cls(
            queue,
            _env_int("OTEL_BSP_SCHEDULE_DELAY", default.schedule_delay_millis),
            min(_env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default.max_export_batch_size), queue),
        )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        _log.warning("spendscope: %s=%r is not a positive integer; using %d", name, raw, default)
        return default
    return value


class SpanPipe(SpanProcessor):
    """Queues spendscope's records (and any SDK span the provider ends) and exports them in batches."""

    def __init__(
        self,
        exporter: SpanExporter,
        resource: Resource,
        scope: InstrumentationScope,
        settings: Settings | None = None,
        *,
        raw: SpanExporter | None = None,
        compress: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """``exporter`` takes the public path; ``raw``, if given, the encoded and ``compress``-ed bytes."""
        self._exporter = exporter
        self._raw = raw
        self._resource = resource
        self._scope = scope
        self._envelope = envelope(resource, scope)
        self._send = bytes_sender(exporter if raw is None else raw)
        self._compress = compress if raw is not None else None
        if self._send is None:
            HEALTH.log_once(
                "otel-internals",
                "spendscope: the OTLP exporter has no bytes client here; exporting through its public API",
            )
        self._suppress_key = suppress_instrumentation_key()
        self.settings = settings or Settings.from_env()
        self._queue: deque[SpanRecord | ReadableSpan] = deque()
        self._failing = False
        self._shutdown = False
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            this = weakref.ref(self)

            def after_fork() -> None:
                pipe = this()
                if pipe is not None:
                    pipe._start_worker()

            os.register_at_fork(after_in_child=after_fork)

    def _start_worker(self) -> None:
        # Also run in a forked child: the parent's thread and lock state do not survive a fork.
        self._queue.clear()
        self._cond = threading.Condition(threading.Lock())
        self._flush_requested = 0
        self._flushed = 0
        self._worker = threading.Thread(target=self._run, name="spendscope-export", daemon=True)
        self._worker.start()

    # --- producers (the app's threads) -----------------------------------------------------------
    def add(self, record: SpanRecord | ReadableSpan) -> None:
        """Queue one finished span; drop and count it when the queue is full or shut down."""
        queue = self._queue
        if len(queue) >= self.settings.max_queue_size or self._shutdown:
            HEALTH.count("dropped_spans")
            return
        queue.append(record)
        if len(queue) >= self.settings.max_export_batch_size:
            with self._cond:
                self._cond.notify()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is not None and context.trace_flags.sampled:
            self.add(span)

    # --- the worker -------------------------------------------------------------------------------
    def _run(self) -> None:
        if self._suppress_key is not None:
            otel_context.attach(otel_context.set_value(self._suppress_key, True))
        delay = self.settings.schedule_delay_millis / 1000
        cond = self._cond
        while True:
            with cond:
                if not (
                    self._shutdown
                    or self._flush_requested != self._flushed
                    or len(self._queue) >= self.settings.max_export_batch_size
                ):
                    cond.wait(delay)
                wanted, stop = self._flush_requested, self._shutdown
            self._drain()
            with cond:
                self._flushed = wanted
                cond.notify_all()
            if stop:
                return

    def _drain(self) -> None:
        """Export everything queued, in batches (only the worker thread exports)."""
        queue, size = self._queue, self.settings.max_export_batch_size
        while queue:
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            try:
                self._export(batch)
            except Exception:
                HEALTH.count("export_failed_spans", len(batch))
                HEALTH.log_once("export-internal", "spendscope: export failed", exc_info=True)

    def _export(self, batch: list[SpanRecord | ReadableSpan]) -> None:
        records = [item for item in batch if type(item) is SpanRecord]
        if len(records) != len(batch):
            spans = [item for item in batch if isinstance(item, ReadableSpan)]
            self._outcome(self._exporter.export(spans) is SpanExportResult.SUCCESS, len(spans))
        if records:
            self._outcome(self._export_records(records), len(records))

    def _export_records(self, records: Sequence[SpanRecord]) -> bool:
        send = self._send
        if send is not None:
            try:
                data = encode_records(records, self._envelope)
            except Exception:  # a value the fast encoder does not know: the official one decides
                HEALTH.log_once("encode", "spendscope: a span needed the generic OTLP encoder", exc_info=True)
            else:
                try:
                    return send(self._compress(data) if self._compress is not None else data)
                except AttributeError:
                    self._send = None
                    HEALTH.log_once(
                        "otel-internals",
                        "spendscope: the OTLP exporter's client changed; exporting through its public API",
                        exc_info=True,
                    )
        spans = to_readable_spans(records, self._resource, self._scope)
        return self._exporter.export(spans) is SpanExportResult.SUCCESS

    def _outcome(self, ok: bool, count: int) -> None:
        if ok:
            HEALTH.count("exported_spans", count)
            if self._failing:
                self._failing = False
                HEALTH.forget("export")
                _log.info("spendscope: export to the collector recovered")
        else:
            HEALTH.count("export_failed_spans", count)
            self._failing = True
            HEALTH.log_once(
                "export", "spendscope: spans could not be exported to the collector; calls are unaffected"
            )

    # --- flush and shutdown -------------------------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now; wait for it at most ``timeout_millis``."""
        cond = self._cond
        with cond:
            if self._shutdown or not self._worker.is_alive():
                return False
            self._flush_requested += 1
            wanted = self._flush_requested
            cond.notify_all()
            return cond.wait_for(lambda: self._flushed - wanted >= 0, timeout_millis / 1000)

    def shutdown(self) -> None:
        """Export what is queued (bounded: a dead collector cannot hold the app), then stop."""
        with self._cond:
            if self._shutdown:
                return
            self._shutdown = True
            self._cond.notify_all()
        self._worker.join(SHUTDOWN_WAIT_S)
        self._exporter.shutdown()  # also ends the exporter's retry waits, should the worker be in one
        if self._raw is not None:
            self._raw.shutdown()
