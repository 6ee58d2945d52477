"""The API client's error mapping against a real loopback HTTP server, and the CLI wiring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from spendscope.cli import build_parser
from spendscope.client import ApiClient, ApiError, client_from_env
from spendscope.dashboard.cli import APP_PATH, dashboard_argv, dashboard_command
from tests.dashboard.conftest import free_port, wait_http


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        routes = {
            "/api/v1/ok": (200, json.dumps({"rows": [{"a": 1}], "auth": self.headers.get("Authorization")})),
            "/api/v1/bad": (400, json.dumps({"error": "group_by: unknown key 'x'"})),
            "/api/v1/boom": (500, "<html>oops</html>"),
            "/api/v1/notjson": (200, "<html>a proxy login page</html>"),
            "/api/v1/list": (200, "[1, 2]"),
            "/api/v1/forbidden": (403, "{}"),
        }
        status, body = routes.get(self.path.split("?")[0], (404, "{}"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_token_is_sent_and_rows_read(server: str) -> None:
    c = ApiClient(server, token="s3cret")
    assert c.rows("/api/v1/ok") == [{"a": 1}]
    assert c.get("/api/v1/ok")["auth"] == "Bearer s3cret"
    assert ApiClient(server).get("/api/v1/ok")["auth"] is None


@pytest.mark.parametrize(
    ("path", "kind", "text"),
    [
        ("/api/v1/bad", "bad_request", "group_by: unknown key"),
        ("/api/v1/boom", "server", "answered 500"),
        ("/api/v1/notjson", "invalid", "did not answer JSON"),
        ("/api/v1/list", "invalid", "JSON object"),
        ("/api/v1/forbidden", "unauthorized", "requires a token"),
        ("/api/v1/missing", "not_found", "no /api/v1/missing endpoint"),
    ],
)
def test_failures_are_api_errors_with_a_sentence(server: str, path: str, kind: str, text: str) -> None:
    with pytest.raises(ApiError) as info:
        ApiClient(server).get(path)
    assert info.value.kind == kind
    assert text in info.value.message


def test_unreachable_and_env() -> None:
    with pytest.raises(ApiError) as info:
        ApiClient("http://127.0.0.1:9", timeout_s=2).get("/api/v1/spend")
    assert info.value.kind == "unreachable" and "spendscope collector" in info.value.message
    c = client_from_env({"SPENDSCOPE_API": "http://h:1", "SPENDSCOPE_TOKEN": "t"})
    assert (c.base_url, c.token) == ("http://h:1", "t")
    assert client_from_env({}).base_url == "http://127.0.0.1:4318"


def test_cli_registers_dashboard_with_contract_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPENDSCOPE_API", raising=False)
    args = build_parser().parse_args(["dashboard"])
    assert (args.port, args.api, args.host) == (8501, "http://127.0.0.1:4318", "127.0.0.1")
    args = build_parser().parse_args(["dashboard", "--port", "9000", "--api", "http://c:4318"])
    assert (args.port, args.api) == (9000, "http://c:4318")
    cmd = dashboard_command(9000)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP_PATH)]
    assert cmd[cmd.index("--server.port") + 1] == "9000" and "--server.headless" in cmd
    assert APP_PATH.exists()


@pytest.mark.slow
def test_dashboard_argv_serves_and_sigterm_stops_streamlit_too() -> None:
    port = free_port()
    proc = subprocess.Popen(
        dashboard_argv(port=port, api="http://127.0.0.1:9"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the test can then check the whole group is gone
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        # No Streamlit left behind in the session.
        for _ in range(50):
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("streamlit child outlived the dashboard command")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
