"""``FakeOpenAI``: the fake OpenAI API on loopback, in a background thread.

>>> with FakeOpenAI() as fake:                                   # doctest: +SKIP
...     client = openai.OpenAI(base_url=fake.base_url, api_key=fake.api_key)
"""

from __future__ import annotations

import socket
import sys
import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from spendscope.fake_openai.faults import parse_fault
from spendscope.fake_openai.handler import FakeHandler
from spendscope.fake_openai.ledger import Ledger
from spendscope.fake_openai.records import RecordedRequest
from spendscope.fake_openai.state import FakeState

__all__ = ["DEFAULT_KEYS", "FakeOpenAI", "parse_fault"]

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_MAX_CONNECTIONS = 512  # one thread each; beyond this new connections are refused at once

DEFAULT_KEYS: dict[str, str] = {
    "api_key": "sk-fake-proj-0123456789abcdef0123456789abcdef",
    "admin_key": "sk-admin-fake-0123456789abcdef0123456789abcdef",
    "azure_api_key": "fakeazure0123456789abcdef0123456",
    "project": "proj_fake0000000000000000000",
    "azure_project": "proj_fakeazure0000000000000",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: FakeState) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        handler = type("BoundFakeHandler", (FakeHandler,), {"state": state})
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(_MAX_CONNECTIONS)
        self._active: set[socket.socket] = set()
        self._active_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        with self._active_lock:
            self._active.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request: Any) -> None:
        with self._active_lock:
            if request in self._active:
                self._active.discard(request)
                self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is normal traffic here (tests abort streams on purpose);
        # anything else is a bug in the fake and keeps the default traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Wake threads blocked on idle keep-alive connections so stop() returns promptly."""
        with self._active_lock:
            sockets = list(self._active)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeOpenAI:
    """A real-HTTP fake of the OpenAI API (and Azure OpenAI) for tests, benchmarks and the demo."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = DEFAULT_KEYS["api_key"],
        admin_key: str = DEFAULT_KEYS["admin_key"],
        azure_api_key: str = DEFAULT_KEYS["azure_api_key"],
        organization: str = "fake-org",
        project: str = DEFAULT_KEYS["project"],
        gzip: bool = True,
    ) -> None:
        if host not in _LOOPBACK:
            raise ValueError(f"FakeOpenAI binds loopback only, not {host!r}")
        self.host = "127.0.0.1" if host == "localhost" else host
        self._requested_port = port
        self._state = FakeState(
            api_key=api_key,
            admin_key=admin_key,
            azure_api_key=azure_api_key,
            organization=organization,
            project=project,
            azure_project=DEFAULT_KEYS["azure_project"],
            gzip=gzip,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        self._state.stopping.clear()
        self._server = _Server((self.host, self._requested_port), self._state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._state.stopping.set()  # interrupts fault sleeps and stalls
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses and keys --------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def api_key(self) -> str:
        return self._state.api_key

    @property
    def admin_key(self) -> str:
        return self._state.admin_key

    @property
    def azure_api_key(self) -> str:
        return self._state.azure_api_key

    @property
    def organization(self) -> str:
        return self._state.organization

    @property
    def project(self) -> str:
        """The project of ``api_key``."""
        return self._state.default_project

    @property
    def projects(self) -> dict[str, str]:
        """API key -> project id; add a key here to make it valid. ``reset()`` restores the defaults."""
        return self._state.projects

    def key_id(self, key: str) -> str:
        """The ``api_key_id`` the ledger and the Usage API use for ``key``."""
        return self._state.key_id(key)

    # -- truth and control ---------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        return self._state.ledger

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.log.items()

    def inject(self, rule: dict[str, Any]) -> None:
        """Add a fault rule: ``{"match": {"path", "model", "method", "nth", "times"}, "action": {...}}``."""
        self._state.faults.add(rule)

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def reset(self) -> None:
        """Clear the ledger, recorded requests, faults and rate-limit state; real clock; default keys."""
        self._state.reset()

    def set_clock(self, ts: float) -> None:
        """Freeze the server clock at ``ts`` (unix seconds); ledger ``ts`` and ``created`` follow it."""
        self._state.clock.set(ts)

    def advance_clock(self, seconds: float) -> None:
        self._state.clock.advance(seconds)

    def real_clock(self) -> None:
        self._state.clock.real()

    def now(self) -> float:
        return self._state.clock.now()

    def set_rate_limits(
        self,
        model: str | None = None,
        *,
        requests_per_min: int | None = None,
        tokens_per_min: int | None = None,
        enforce: bool | None = None,
    ) -> None:
        """Override a model's per-minute limits and/or make empty buckets answer 429."""
        limiter = self._state.limiter
        if model is not None and requests_per_min and tokens_per_min:
            limiter.set_limits(model, requests_per_min, tokens_per_min)
        if enforce is not None:
            limiter.enforce = enforce

    @property
    def gzip(self) -> bool:
        return self._state.gzip

    @gzip.setter
    def gzip(self, value: bool) -> None:
        self._state.gzip = value
