"""The delivery worker: drains the ``alert_deliveries`` outbox with timeouts, retries and backoff.

Evaluation only writes outbox rows; this thread sends them, so a receiver that fails or hangs delays
its own deliveries and nothing else. Every attempt is recorded. Rows still pending at a restart are
sent after it (at-least-once: a crash in the middle of a send may repeat that one message).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol

import duckdb

from spendscope.collector.alerts.channels import Outcome, send
from spendscope.collector.alerts.config import ChannelConfig

__all__ = ["AlertStore", "DeliveryWorker", "backoff_s"]

log = logging.getLogger("spendscope.collector.alerts.delivery")


class AlertStore(Protocol):
    """What alerts need of the collector's store: read cursors and the single writer."""

    def cursor(self) -> duckdb.DuckDBPyConnection: ...

    def run_write(
        self, fn: Callable[[duckdb.DuckDBPyConnection], Any], timeout: float | None = ...
    ) -> Any: ...


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff after ``attempts`` failed attempts: base, 2·base, 4·base, ... capped."""
    return float(min(base_s * (2 ** max(attempts - 1, 0)), max_s))


class DeliveryWorker:
    """A thread sending due deliveries through a small pool, so one slow channel can't starve the rest."""

    def __init__(
        self,
        store: AlertStore,
        channels: Mapping[str, ChannelConfig],
        clock: Callable[[], datetime],
        *,
        poll_s: float = 1.0,
        retry_base_s: float = 10.0,
        retry_max_s: float = 600.0,
        pool_size: int = 4,
        sender: Callable[[ChannelConfig, dict[str, Any]], Outcome] = send,
        should_stop: Callable[[], bool] = lambda: False,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self._should_stop = should_stop
        # Whether this process may send now (with a lake: while it leads); checked before each send.
        self._active = active
        self.store = store
        self.channels = dict(channels)
        self.clock = clock
        self.poll_s = poll_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self._sender = sender
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="alert-send")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight: set[int] = set()
        # Last attempt recorded per delivery: a pass that read its rows before that write committed
        # sees an older attempt count and must not send again.
        self._recorded: dict[int, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        # Sends in progress finish (each is bounded by its channel's timeout) so their outcome is recorded.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._should_stop():  # the collector is shutting down and closes the store
                return
            try:
                self.dispatch_due()
            except Exception:  # the worker must outlive a bad row or a closed store
                log.exception("alert delivery pass failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def dispatch_due(self) -> list[Future[None]]:
        """Hand every due, not-in-flight delivery to the pool; return their futures."""
        if not self._active():
            return []
        now = self.clock()
        cur = self.store.cursor()
        try:
            rows = cur.execute(
                "SELECT delivery_id, channel, attempts, payload FROM alert_deliveries "
                "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY delivery_id LIMIT 100",
                [now],
            ).fetchall()
        finally:
            cur.close()
        futures: list[Future[None]] = []
        for delivery_id, channel, attempts, payload in rows:
            with self._lock:
                if delivery_id in self._in_flight or self._recorded.get(delivery_id, 0) > attempts:
                    continue
                self._in_flight.add(delivery_id)
            body = json.loads(payload) if isinstance(payload, str) else payload
            futures.append(self._pool.submit(self._attempt, int(delivery_id), channel, int(attempts), body))
        return futures

    def _attempt(self, delivery_id: int, channel_name: str, attempts: int, payload: dict[str, Any]) -> None:
        try:
            channel = self.channels.get(channel_name)
            started = time.monotonic()
            if not self._active():
                return  # leadership moved while this waited: the new leader sends it
            if channel is None:
                outcome = Outcome(False, None, f"channel {channel_name!r} is no longer configured")
                max_attempts = 1
            else:
                outcome = self._sender(channel, payload)
                max_attempts = channel.max_attempts
            self._record(delivery_id, attempts + 1, outcome, time.monotonic() - started, max_attempts)
            with self._lock:
                self._recorded[delivery_id] = attempts + 1
                if len(self._recorded) > 10_000:
                    for key in list(self._recorded)[:5_000]:
                        del self._recorded[key]
        except Exception:
            log.exception("recording delivery %s failed", delivery_id)
        finally:
            with self._lock:
                self._in_flight.discard(delivery_id)

    def _record(
        self, delivery_id: int, attempt: int, outcome: Outcome, duration_s: float, max_attempts: int
    ) -> None:
        now = self.clock()
        if outcome.ok:
            status, next_at = "delivered", now
        elif attempt >= max_attempts:
            status, next_at = "failed", now
        else:
            status = "pending"
            next_at = now + timedelta(seconds=backoff_s(attempt, self.retry_base_s, self.retry_max_s))
        if not outcome.ok:
            log.warning("alert delivery %s attempt %s failed: %s", delivery_id, attempt, outcome.error)

        def write(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    "DELETE FROM alert_delivery_attempts WHERE delivery_id = ? AND attempt = ?",
                    [delivery_id, attempt],
                )
                con.execute(
                    "INSERT INTO alert_delivery_attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [delivery_id, attempt, now, outcome.ok, outcome.status_code, outcome.error, duration_s],
                )
                con.execute(
                    "UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, "
                    "last_attempt_at = ?, last_error = ?, delivered_at = ? WHERE delivery_id = ?",
                    [status, attempt, next_at, now, outcome.error, now if outcome.ok else None, delivery_id],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

        self.store.run_write(write)
