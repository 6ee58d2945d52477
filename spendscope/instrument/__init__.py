"""The SDK: one OpenTelemetry span per OpenAI HTTP attempt, exported over OTLP to the collector.

    import spendscope
    spendscope.instrument()

``instrument/`` stands alone: it imports nothing of the collector, pricing or dashboard.
"""

from __future__ import annotations

from spendscope.instrument.api import Instrumentation, instrument, uninstrument
from spendscope.instrument.attribution import attributes

__all__ = ["Instrumentation", "attributes", "instrument", "uninstrument"]
