"""Test support for alerts: an injectable clock, a calls writer and a real local HTTP receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from spendscope.collector.alerts.config import AlertsConfig, parse_alerts
from spendscope.collector.alerts.engine import AlertEngine
from spendscope.collector.components import migrate
from spendscope.collector.ingest import mark_days_dirty
from spendscope.collector.store import Store

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # a Tuesday


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **kw: float) -> datetime:
        with self._lock:
            self.now += timedelta(**kw)
            return self.now

    def set(self, t: datetime) -> None:
        with self._lock:
            self.now = t


def open_store(path: Path) -> Store:
    store = Store(str(path))
    migrate(store)
    return store


_n = 0


def add_call(store: Store, at: datetime, **cols: Any) -> None:
    """Insert one call; only the columns a rule reads need to be given."""
    global _n
    _n += 1
    row: dict[str, Any] = {
        "trace_id": f"{_n:032x}",
        "span_id": f"{_n:016x}",
        "start_time": at,
        "day": at.astimezone(UTC).date(),
        "model": "gpt-4o",
        "is_error": False,
        "batch": False,
        "ingested_at": at,
        "status_code": 200,
        "pricing_status": "priced",
    }
    row.update(cols)
    if "cost_usd" in row and row["cost_usd"] is not None:
        row["cost_usd"] = Decimal(str(row["cost_usd"]))
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)

    def write(con: Any) -> None:
        con.execute(f"INSERT INTO calls ({names}) VALUES ({marks})", list(row.values()))
        # As the writer does: a day with new calls is read from calls until it is rolled up again.
        mark_days_dirty(con, [(row["day"] - date(1970, 1, 1)).days])

    store.run_write(write)


def config(text: str, env: dict[str, str] | None = None) -> AlertsConfig:
    import tomllib

    return parse_alerts(tomllib.loads(text), "test.toml", env or {})


def engine_for(store: Store, clock: Clock, text: str) -> AlertEngine:
    return AlertEngine(config(text), store, clock)


@dataclass
class Received:
    path: str
    body: Any
    at: float
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


@dataclass
class Receiver:
    """A real HTTP server on loopback. ``/ok/*`` answers 200, ``/fail/N/*`` 500 for the first N posts,
    ``/hang/*`` never answers within a client timeout (it sleeps ``hang_s``)."""

    server: ThreadingHTTPServer
    got: list[Received] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    hang_s: float = 3.0

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def wait_for(self, pred: Callable[[list[Received]], bool], timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(list(self.got)):
                return list(self.got)
            time.sleep(0.02)
        raise AssertionError(f"receiver did not get what was expected; got {self.got}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            rec = holder["r"]
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            parts = self.path.strip("/").split("/")
            rec.counts[self.path] = rec.counts.get(self.path, 0) + 1
            if parts[0] == "hang":
                time.sleep(rec.hang_s)
                return
            if parts[0] == "fail" and rec.counts[self.path] <= int(parts[1]):
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"boom")
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            rec.got.append(Received(self.path, json.loads(body), time.monotonic(), headers))
            self.send_response(202 if parts[0] == "pd" else 200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status":"success"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec = Receiver(server)
    holder["r"] = rec
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return rec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
