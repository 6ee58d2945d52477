"""Counting and logging-once of what goes wrong inside the instrumentation.

The SDK must never break or flood the host app: every internal failure is caught by the caller,
counted here and logged the first time it happens at a given place. Tests set
``SPENDSCOPE_RAISE_INTERNAL_ERRORS=1`` so a bug surfaces as a failure instead of a log line.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter

__all__ = ["HEALTH", "Health", "logger"]

logger = logging.getLogger("spendscope")


class Health:
    """Process-wide counters of the SDK's own trouble (read them with ``Instrumentation.stats()``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._logged: set[str] = set()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def internal_error(self, where: str) -> None:
        """Record the exception being handled; re-raise it when tests ask for that."""
        self.count("internal_errors")
        if os.environ.get("SPENDSCOPE_RAISE_INTERNAL_ERRORS") == "1":
            raise  # noqa: PLE0704  (always called from an except block)
        self.log_once(where, f"spendscope: internal error in {where}; the call is unaffected", exc_info=True)

    def log_once(self, key: str, message: str, *, exc_info: bool = False) -> None:
        with self._lock:
            if key in self._logged:
                return
            self._logged.add(key)
        logger.warning(message, exc_info=exc_info)

    def forget(self, key: str) -> None:
        """Allow ``key`` to be logged again (e.g. after a recovery)."""
        with self._lock:
            self._logged.discard(key)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


HEALTH = Health()
