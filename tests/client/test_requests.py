"""spendscope.client's exact requests and its reading of every kind of answer, against a loopback
server that records what arrives and answers what a proxy, an old collector or a bug would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from spendscope.client import MAX_ANSWER_BYTES, ApiClient, ApiError, client_from_env, default_api

# path → (status, body); the body "{auth}" echoes the Authorization header.
_ROUTES: dict[str, tuple[int, str]] = {
    "/api/v1/ok": (200, "{auth}"),
    "/api/v1/bad": (400, json.dumps({"error": "group_by: unknown key 'x'"})),
    "/api/v1/plain": (400, "Bad Request: the proxy refused the Host header"),
    "/api/v1/boom": (500, "<html>oops</html>"),
    "/api/v1/notjson": (200, "<html>a proxy login page</html>"),
    "/api/v1/list": (200, "[1, 2]"),
    "/api/v1/forbidden": (403, "{}"),
    "/api/v1/missing": (404, "{}"),
    "/api/v1/norule": (404, json.dumps({"ok": False, "error": "no rule named 'x'"})),
}


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        _Recorder.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "accept": self.headers.get("Accept"),
                "auth": self.headers.get("Authorization"),
                "body": self.rfile.read(length) if length else None,
            }
        )
        path = self.path.split("?")[0]
        if path == "/api/v1/redirect":
            self.send_response(302)
            self.send_header("Location", "/api/v1/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/api/v1/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(MAX_ANSWER_BYTES + 2))
            self.end_headers()
            chunk = b" " * (1 << 20)
            try:
                for _ in range(MAX_ANSWER_BYTES // len(chunk)):
                    self.wfile.write(chunk)
                self.wfile.write(b"{}")
            except OSError:
                pass  # the client stopped reading at its cap
        else:
            status, body = _ROUTES.get(path, (200, json.dumps({"ok": True})))
            if body == "{auth}":
                body = json.dumps({"rows": [{"a": 1}], "auth": self.headers.get("Authorization")})
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_every_post_is_json_and_every_request_asks_for_json(server: str) -> None:
    _Recorder.seen.clear()
    c = ApiClient(server + "/", token="t0k")  # a trailing slash is fine
    c.sync()
    c.test_alert("daily budget/eu")
    c.reprice(datetime(2026, 11, 1, 1, 30, tzinfo=UTC) + timedelta(hours=-1))
    c.alerts("all")
    c.get("/api/v1/spend", {"start": "2026-01-01", "end": None, "group_by": ""})
    assert [(s["method"], s["path"], s["body"]) for s in _Recorder.seen] == [
        ("POST", "/api/v1/sync", b"{}"),
        ("POST", "/api/v1/alerts/daily%20budget%2Feu/test", b"{}"),
        ("POST", "/api/v1/prices/reprice", b'{"since": "2026-11-01T00:30:00Z"}'),
        ("GET", "/api/v1/alerts?state=all", None),
        ("GET", "/api/v1/spend?start=2026-01-01", None),
    ]
    posts = [s for s in _Recorder.seen if s["method"] == "POST"]
    assert {s["content_type"] for s in posts} == {"application/json"}
    assert {s["content_type"] for s in _Recorder.seen if s["method"] == "GET"} == {None}
    assert {(s["accept"], s["auth"]) for s in _Recorder.seen} == {("application/json", "Bearer t0k")}


def test_token_is_sent_and_rows_read(server: str) -> None:
    c = ApiClient(server, token="s3cret")
    assert c.rows("/api/v1/ok") == [{"a": 1}]
    assert c.get("/api/v1/ok")["auth"] == "Bearer s3cret"
    assert ApiClient(server).get("/api/v1/ok")["auth"] is None


@pytest.mark.parametrize(
    ("path", "kind", "text"),
    [
        ("/api/v1/bad", "bad_request", "/api/v1/bad answered 400: group_by: unknown key 'x'"),
        ("/api/v1/plain", "bad_request", "answered 400: Bad Request: the proxy refused the Host header"),
        ("/api/v1/boom", "server", "/api/v1/boom answered 500: Internal Server Error"),
        ("/api/v1/notjson", "invalid", "did not answer JSON"),
        ("/api/v1/list", "invalid", "JSON object"),
        ("/api/v1/forbidden", "unauthorized", "requires a token"),
        ("/api/v1/missing", "not_found", "no /api/v1/missing endpoint"),
        ("/api/v1/norule", "not_found", "/api/v1/norule answered 404: no rule named 'x'"),
        ("/api/v1/redirect", "invalid", "a redirect: give the collector's own URL"),
        ("/api/v1/huge", "invalid", f"more than {MAX_ANSWER_BYTES} bytes"),
    ],
)
def test_failures_are_api_errors_with_a_sentence(server: str, path: str, kind: str, text: str) -> None:
    err = _error(lambda: ApiClient(server).get(path))
    assert err.kind == kind
    assert text in err.message


def test_redirects_are_not_followed(server: str) -> None:
    _Recorder.seen.clear()
    err = _error(lambda: ApiClient(server, token="t0k").post("/api/v1/redirect"))
    assert (err.kind, err.status) == ("invalid", 302)
    assert [s["path"] for s in _Recorder.seen] == ["/api/v1/redirect"]  # the token went nowhere else


def test_unreachable_bad_urls_and_env() -> None:
    err = _error(lambda: ApiClient("http://127.0.0.1:9", timeout_s=2).get("/api/v1/spend"))
    assert err.kind == "unreachable" and "spendscope collector" in err.message
    for bad in ("file:///etc/passwd", "127.0.0.1:4318", "http://[::1", "http://h:port"):
        err = _error(lambda bad=bad: ApiClient(bad).get("/api/v1/spend"))
        assert err.kind == "unreachable", (bad, err.message)
    c = client_from_env({"SPENDSCOPE_API": "http://h:1", "SPENDSCOPE_TOKEN": "t"})
    assert (c.base_url, c.token) == ("http://h:1", "t")
    assert client_from_env({}).base_url == "http://127.0.0.1:4318"
    assert default_api({"SPENDSCOPE_API": "http://c:9/"}) == "http://c:9"
    c = client_from_env({"SPENDSCOPE_TOKEN": ""}, api="http://x:1", timeout_s=3)
    assert (c.base_url, c.token, c.timeout_s) == ("http://x:1", None, 3)
