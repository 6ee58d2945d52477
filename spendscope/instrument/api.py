"""``instrument()`` / ``uninstrument()``: the SDK's whole public switchboard."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Tracer, TracerProvider

from spendscope.instrument.call import DirectRecorder, Recorder
from spendscope.instrument.health import HEALTH, logger
from spendscope.instrument.patch import Patcher

if TYPE_CHECKING:
    from spendscope.instrument.export import OwnProvider

__all__ = ["Instrumentation", "instrument", "uninstrument"]

_SCOPE = "spendscope.instrument"
_lock = threading.Lock()
_active: Instrumentation | None = None


class Instrumentation:
    """The handle ``instrument()`` returns; ``uninstrument()`` restores the originals exactly."""

    def __init__(
        self,
        patcher: Patcher,
        provider: TracerProvider,
        *,
        owns_provider: bool,
        log_filter: logging.Filter | None,
        modules: list[str],
    ) -> None:
        self._patcher = patcher
        self.tracer_provider = provider
        self._owns_provider = owns_provider
        self._log_filter = log_filter
        self.modules = modules
        self.active = True

    def stats(self) -> dict[str, int]:
        """Counters of the SDK's own health: exported, dropped and failed spans, internal errors."""
        return HEALTH.snapshot()

    def force_flush(self, timeout_millis: int = 5000) -> bool:
        flush = getattr(self.tracer_provider, "force_flush", None)
        return bool(flush(timeout_millis)) if flush else True

    def uninstrument(self) -> None:
        global _active
        with _lock:
            if not self.active:
                return
            self.active = False
            self._patcher.uninstall()
            if _active is self:
                _active = None
        if self._owns_provider:
            _shutdown_provider(self.tracer_provider, self._log_filter)


def instrument(
    *,
    hosts: Iterable[str] | None = None,
    capture_content: bool = False,
    service_name: str | None = None,
    tracer_provider: TracerProvider | None = None,
    set_global_tracer_provider: bool = False,
) -> Instrumentation:
    """Record every OpenAI call of this process as an OpenTelemetry span.

    Args:
        hosts: restrict recognition to these host names; by default OpenAI-style paths are
            recognized on any host (api.openai.com, Azure, gateways, local servers).
        capture_content: also record prompts and completions (off by default).
        service_name: the ``service.name`` resource attribute (else ``OTEL_SERVICE_NAME``).
        tracer_provider: export through this provider instead of spendscope's own OTLP pipeline.
        set_global_tracer_provider: also make spendscope's provider the global one.

    Calling it again while active returns the same handle and changes nothing.
    """
    global _active
    with _lock:
        if _active is not None:
            return _active
        from spendscope import __version__

        owns = tracer_provider is None
        log_filter: logging.Filter | None = None
        own: OwnProvider | None = None
        if tracer_provider is None:
            from spendscope.instrument.export import build_provider

            own, log_filter = build_provider(service_name, InstrumentationScope(_SCOPE, __version__))
            tracer_provider = own
            if set_global_tracer_provider:
                trace.set_tracer_provider(own)
        tracer = tracer_provider.get_tracer(_SCOPE, __version__)
        patcher = Patcher(
            _recorder(tracer, own, capture_content), frozenset(hosts) if hosts is not None else None
        )
        modules = patcher.install()
        if not modules:
            logger.warning("spendscope: neither httpx nor httpx2 is importable; nothing to instrument")
        _active = Instrumentation(
            patcher, tracer_provider, owns_provider=owns, log_filter=log_filter, modules=modules
        )
        if owns:
            atexit.register(_at_exit, _active)
        return _active


def _recorder(tracer: Tracer, own: OwnProvider | None, capture_content: bool) -> Recorder:
    # A user's provider gets the stock SDK span path; so does spendscope's own when the SDK is
    # disabled (OTEL_SDK_DISABLED: get_tracer answers a no-op tracer, and nothing is recorded).
    if own is not None and isinstance(tracer, SdkTracer):
        return DirectRecorder(tracer, capture_content, own)
    return Recorder(tracer, capture_content)


def uninstrument() -> None:
    """Undo ``instrument()`` (a no-op when not instrumented)."""
    active = _active
    if active is not None:
        active.uninstrument()


def _at_exit(handle: Instrumentation) -> None:
    if handle.active:
        _shutdown_provider(handle.tracer_provider, handle._log_filter)


def _shutdown_provider(provider: Any, log_filter: logging.Filter | None) -> None:
    # Shutting spendscope's provider down exports what is still queued, for at most
    # pipeline.SHUTDOWN_WAIT_S, so that a dead collector cannot hold the process open.
    try:
        provider.shutdown()
    except Exception:
        HEALTH.internal_error("shutdown")
    finally:
        if log_filter is not None:
            from spendscope.instrument.export import remove_filter

            remove_filter(log_filter)
