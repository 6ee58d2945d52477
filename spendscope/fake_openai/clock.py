"""The fake's clock: real time by default, frozen or shifted on request (for Usage API buckets)."""

from __future__ import annotations

import threading
import time

__all__ = ["Clock"]


class Clock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: float | None = None
        self._offset = 0.0

    def now(self) -> float:
        frozen = self._frozen
        return frozen if frozen is not None else time.time() + self._offset

    def set(self, ts: float) -> None:
        """Freeze the clock at ``ts`` (unix seconds) until ``advance`` or ``real``."""
        with self._lock:
            self._frozen = float(ts)

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def real(self) -> None:
        with self._lock:
            self._frozen = None
            self._offset = 0.0

    @property
    def frozen(self) -> bool:
        return self._frozen is not None
