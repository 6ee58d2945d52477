"""The fake OpenAI server's ledger: the truth that tests compare spans, sync and costs against.

Every inference request the fake answers appends one :class:`LedgerRow`, successful or not, so a
test can count attempts as well as billed usage. The Usage and Costs endpoints aggregate the rows
with ``billed`` set (OpenAI bills successful requests only).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Ledger", "LedgerRow"]


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One request the fake served (one HTTP attempt)."""

    ts: float  # unix seconds, the fake's clock at the time the request arrived
    endpoint: str  # "chat.completions", "responses", "embeddings", "completions", "moderations", ...
    model: str  # the model the response reports (dated snapshot when the fake maps one)
    request_model: str
    status: int  # HTTP status sent
    error_code: str | None = None  # OpenAI error code for non-2xx (or in-stream) errors
    billed: bool = True  # counted by the Usage and Costs APIs
    stream: bool = False
    project_id: str | None = None
    api_key_id: str | None = None
    user_id: str | None = None  # body.user or body.safety_identifier
    batch: bool = False
    service_tier: str | None = None  # the tier the response reported
    input_tokens: int = 0  # includes cached and cache-write tokens
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0  # includes reasoning tokens
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    images: int = 0
    characters: int = 0
    seconds: int = 0
    num_model_requests: int = 1
    request_id: str | None = None
    retry_count: int = 0  # the request's x-stainless-retry-count
    usage_reported: bool = True  # False when the client could not have seen usage (no include_usage)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """A thread-safe append-only list of :class:`LedgerRow`, with a hook for seeded history."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[LedgerRow] = []
        self._generation = 0

    @property
    def generation(self) -> int:
        """Changes at every :meth:`clear`; a request notes it when it arrives."""
        return self._generation

    def append(self, row: LedgerRow, generation: int | None = None) -> None:
        """Record a row, unless the ledger was cleared since its request arrived (``generation``).

        A slow request (a first-byte delay, say) must not land in the ledger of the next test.
        """
        with self._lock:
            if generation is None or generation == self._generation:
                self._rows.append(row)

    def extend(self, rows: Iterable[LedgerRow]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def rows(self) -> list[LedgerRow]:
        with self._lock:
            return list(self._rows)

    def billed(self) -> list[LedgerRow]:
        return [r for r in self.rows() if r.billed]

    def revise(self, index: int, **changes: Any) -> None:
        """Change a row after the fact, as OpenAI revises recent usage buckets."""
        with self._lock:
            self._rows[index] = replace(self._rows[index], **changes)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._generation += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)
