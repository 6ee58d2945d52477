"""A local webhook sink for the demo's alerts: prints each notification and keeps them in a file."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["WebhookSink", "main"]

_MAX_BODY = 1024 * 1024


class WebhookSink:
    """An HTTP server on loopback that accepts JSON POSTs and appends them to a JSON-lines file."""

    def __init__(self, path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = path
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length", "0") or 0), _MAX_BODY)
                body = self.rfile.read(length)
                try:
                    payload: Any = json.loads(body)
                except ValueError:
                    payload = {"raw": body.decode("utf-8", "replace")}
                sink.record(self.path, payload)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._lock = threading.Lock()

    def record(self, route: str, payload: Any) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"path": route, "payload": payload}) + "\n")
        summary = (
            payload.get("text") or payload.get("summary") or payload.get("message")
            if isinstance(payload, dict)
            else None
        )
        print(f"[alert sink] {route}: {summary or json.dumps(payload)[:200]}", flush=True)

    def serve_forever(self) -> None:
        self.server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spendscope.demo.sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", type=Path, required=True)
    args = parser.parse_args(argv)
    sink = WebhookSink(args.file, port=args.port)
    try:
        sink.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
