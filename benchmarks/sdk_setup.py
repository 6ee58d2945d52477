"""What the SDK benchmarks run against: the fake OpenAI and an OTLP sink in their own processes, and
the two measured calls.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["MESSAGES", "calls", "processes", "sink_main"]

MESSAGES = [{"role": "user", "content": "Summarize our cloud spend for the quarter in one line."}]


def calls(client: Any, chunks: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """The two measured calls: a chat completion, and a ``chunks``-delta stream read to its end."""

    def plain() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def stream() -> None:
        for _ in client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-fake-chunks": str(chunks)},
        ):
            pass

    return plain, stream


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def sink_main(port: int) -> None:
    """The OTLP sink process: answers every export 200, keeps nothing."""
    ThreadingHTTPServer(("127.0.0.1", port), _Sink).serve_forever()


@contextlib.contextmanager
def processes() -> Iterator[tuple[str, str, str]]:
    """The fake OpenAI and an OTLP sink, each its own process: (base URL, API key, traces URL)."""
    fake_port, sink_port = _free_port(), _free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "spendscope.fake_openai", "--port", str(fake_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    sink = subprocess.Popen(
        [sys.executable, "-c", f"from benchmarks.sdk_setup import sink_main; sink_main({sink_port})"]
    )
    try:
        _wait_port(fake_port)
        _wait_port(sink_port)
        from spendscope.fake_openai.server import DEFAULT_KEYS

        yield (
            f"http://127.0.0.1:{fake_port}/v1",
            DEFAULT_KEYS["api_key"],
            f"http://127.0.0.1:{sink_port}/v1/traces",
        )
    finally:
        for proc in (fake, sink):
            proc.terminate()
            with contextlib.suppress(Exception):
                proc.wait(5)
