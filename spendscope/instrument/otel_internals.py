"""The SDK's only reads of OpenTelemetry internals, each behind a check with a public fallback.

spendscope's own pipeline hands already-encoded OTLP bytes to the OTLP/HTTP exporter's HTTP client,
so the endpoint, headers, TLS, compression, retries and timeouts stay the exporter's own; and it
exports with instrumentation suppressed, as the SDK's batch processor does, so that an app's
``requests``/``urllib3`` instrumentation does not trace the export. Neither is public API. When an
OpenTelemetry release changes them, these functions answer None, the SDK logs it once and takes the
public path (records become SDK spans, exported with ``exporter.export``), and
``tests/instrument/test_otel_internals.py`` fails, so the change is seen at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry import context

__all__ = ["bytes_sender", "suppress_instrumentation_key"]

BytesSender = Callable[[bytes], bool]


def bytes_sender(exporter: Any) -> BytesSender | None:
    """A function that POSTs serialized OTLP bytes through ``exporter``'s client, or None.

    Reads ``OTLPSpanExporter._client.export(data)`` (opentelemetry-exporter-otlp-proto-http 1.45),
    which compresses, sends, retries and answers a result with ``.success``. The function it
    returns raises ``AttributeError`` if that result changes shape; the caller then falls back.
    """
    client = getattr(exporter, "_client", None)
    export = getattr(client, "export", None)
    if not callable(export):
        return None
    try:
        parameters = list(inspect.signature(export).parameters)
    except (TypeError, ValueError):
        return None
    if parameters != ["data"]:
        return None

    def send(data: bytes) -> bool:
        return bool(export(data).success)

    return send


def suppress_instrumentation_key() -> str | None:
    """The context key with which the SDK's batch processor marks its own export, or None."""
    key = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return key if isinstance(key, str) else None
