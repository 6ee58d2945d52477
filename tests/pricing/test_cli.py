"""`spendscope pricing list|check|reprice` through argparse, reprice against a loopback HTTP server."""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from spendscope.pricing import cli


def run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="spendscope")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.func(args, out)
    return code, out.getvalue()


def test_list_json_without_at_lists_every_version() -> None:
    code, text = run(["pricing", "list", "--json"])
    assert code == 0
    doc = json.loads(text)
    o3 = [r for r in doc["rows"] if r["model"] == "o3" and r["tier"] == "default"]
    assert [r["valid_to"] for r in o3] == ["2025-06-10", None]
    assert doc["version"]


def test_list_at_and_text_output() -> None:
    code, text = run(["pricing", "list", "--json", "--at", "2025-05-01T00:00:00Z"])
    rows = json.loads(text)["rows"]
    o3 = next(r for r in rows if r["model"] == "o3" and r["tier"] == "default")
    assert (o3["input_per_mtok"], o3["output_per_mtok"], o3["valid_to"]) == ("10", "40", "2025-06-10")
    assert not any(r["model"] == "gpt-5" for r in rows)  # not launched yet
    code, text = run(["pricing", "list"])
    assert code == 0 and "gpt-4o-mini" in text and "table version" in text


def test_list_applies_config_overrides(tmp_path: Path) -> None:
    config = tmp_path / "spendscope.toml"
    config.write_text(
        '[[pricing.overrides]]\nmodel = "gpt-4o"\nvalid_from = 2026-01-01\ninput_per_mtok = 2.0\n'
        'output_per_mtok = 8.0\nsource = "negotiated"\n'
    )
    code, text = run(["pricing", "list", "--json", "--at", "2026-02-01", "--config", str(config)])
    assert code == 0
    rows = [r for r in json.loads(text)["rows"] if r["model"] == "gpt-4o" and r["tier"] == "default"]
    assert [(r["origin"], r["input_per_mtok"], r["source"]) for r in rows] == [
        ("override", "2", "negotiated")
    ]


def test_check_exits_zero_when_everything_is_reviewed() -> None:
    pytest.importorskip("genai_prices")
    code, text = run(["pricing", "check", "--json", "--at", "2026-11-22T00:00:00Z"])
    doc = json.loads(text)
    assert (code, doc["unreviewed"]) == (0, 0)
    assert doc["rows"] and all(r["reviewed"] and r["reason"] for r in doc["rows"])


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.seen.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
        )
        answer = json.dumps({"ok": True, "repriced": 3}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join(timeout=5)


def test_reprice_posts_since_with_bearer_token(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDSCOPE_TOKEN", "s3cret")
    _Recorder.seen.clear()
    code, text = run(["pricing", "reprice", "--since", "2026-11-01T00:00:00Z", "--api", server])
    assert code == 0
    assert json.loads(text) == {"ok": True, "repriced": 3}
    assert _Recorder.seen == [
        {
            "path": "/api/v1/prices/reprice",
            "auth": "Bearer s3cret",
            "body": {"since": "2026-11-01T00:00:00Z"},  # the API's own form: UTC, Z
        }
    ]


def test_reprice_reports_an_unreachable_collector() -> None:
    code, _ = run(["pricing", "reprice", "--since", "2026-11-01", "--api", "http://127.0.0.1:9"])
    assert code == 2
