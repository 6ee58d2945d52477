"""spendscope: cost and reliability observability for the OpenAI API.

The one line an application needs::

    import spendscope
    spendscope.instrument()
"""

from __future__ import annotations

from spendscope.instrument import Instrumentation, attributes, instrument, uninstrument

__all__ = ["Instrumentation", "__version__", "attributes", "instrument", "uninstrument"]

__version__ = "0.1.0"
