"""The [sync] section parser and the admin client's retry and pagination guards."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from spendscope.collector.config import ConfigError
from spendscope.collector.sync.client import AdminApiError, AdminClient, retry_delay
from spendscope.collector.sync.config import ALL_ENDPOINTS, parse_sync_settings


def test_defaults_and_env_override() -> None:
    s = parse_sync_settings(
        {}, {"OPENAI_ADMIN_KEY": " sk-admin-x ", "SPENDSCOPE_OPENAI_BASE_URL": "http://h:1/v1/"}
    )
    assert s.configured and s.admin_key == "sk-admin-x" and s.base_url == "http://h:1/v1"
    assert s.interval_s == 3600 and s.backfill_days == 30 and s.trailing_s == 48 * 3600
    assert s.endpoints == ALL_ENDPOINTS and s.bucket_width == "1d"
    assert "sk-admin-x" not in repr(s)
    assert not parse_sync_settings({}, {}).configured


def test_file_values() -> None:
    raw = {
        "sync": {
            "interval": "15m",
            "base_url": "https://example.test/v1",
            "admin_key_env": "MY_KEY",
            "endpoints": ["costs", "completions"],
            "bucket_width": "1h",
            "trailing": 7200,
            "group_by": {"completions": ["model"]},
        }
    }
    s = parse_sync_settings(raw, {"MY_KEY": "sk-admin-y"})
    assert s.interval_s == 900 and s.base_url == "https://example.test/v1" and s.admin_key == "sk-admin-y"
    assert s.endpoints == ("completions", "costs") and s.bucket_seconds == 3600 and s.trailing_s == 7200
    assert s.group_by["completions"] == ("model",) and s.group_by["costs"] == (
        "project_id",
        "line_item",
        "api_key_id",
    )


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"bogus": 1}, "sync.bogus: unknown key"),
        ({"interval": "soon"}, "sync.interval"),
        ({"interval": 0}, "sync.interval: must be positive"),
        ({"bucket_width": "2h"}, "sync.bucket_width"),
        ({"endpoints": ["completions", "nope"]}, "sync.endpoints[1]: must be one of completions"),
        ({"enabled": "yes"}, "sync.enabled"),
        ({"backfill_days": 0}, "sync.backfill_days"),
        ({"base_url": "ftp://x"}, "sync.base_url"),
        ({"group_by": {"completions": "model"}}, "sync.group_by.completions"),
    ],
)
def test_errors_name_the_key(section: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_sync_settings({"sync": section}, {})
    assert needle in str(info.value)


def test_retry_delay_prefers_ms_and_caps() -> None:
    assert retry_delay(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"}), 0, 0.5, 60) == 0.25
    assert retry_delay(httpx.Headers({"retry-after": "2"}), 0, 0.5, 60) == 2
    assert retry_delay(httpx.Headers({"retry-after": "999"}), 0, 0.5, 60) == 60
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_delay(httpx.Headers({"retry-after": when}), 0, 0.5, 60) <= 30
    assert 0 <= retry_delay(httpx.Headers(), 3, 0.5, 60) <= 4


def _page(next_page: str | None, has_more: bool = True) -> bytes:
    return json.dumps(
        {
            "object": "page",
            "data": [{"object": "bucket", "start_time": 0, "end_time": 60, "results": []}],
            "has_more": has_more,
            "next_page": next_page,
        }
    ).encode()


def _client(handler: object) -> AdminClient:
    # An external API's misbehaviour, played by httpx's own mock transport.
    return AdminClient(
        "http://api.test/v1", "sk-admin-z", transport=httpx.MockTransport(handler), sleep=lambda s: None
    )  # type: ignore[arg-type]


def test_repeated_cursor_stops() -> None:
    with (
        _client(lambda req: httpx.Response(200, content=_page("page_same"))) as c,
        pytest.raises(AdminApiError, match="same next_page twice"),
    ):
        list(c.pages("organization/costs", [("start_time", "0")]))


def test_has_more_without_cursor_ends_the_read() -> None:
    with _client(lambda req: httpx.Response(200, content=_page(None))) as c:
        assert len(list(c.pages("organization/costs", [("start_time", "0")]))) == 1


def test_exhausted_retries_and_garbage_give_clear_errors() -> None:
    with _client(
        lambda req: httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})
    ) as c:
        with pytest.raises(AdminApiError, match=r"HTTP 500 \(gave up after retries\): boom"):
            c.get_page("organization/costs", [])
        assert c.requests == 6
    with (
        _client(lambda req: httpx.Response(200, content=b"<html>")) as c,
        pytest.raises(AdminApiError, match="not a Usage/Costs page"),
    ):
        c.get_page("organization/costs", [])


def test_a_page_over_the_size_limit_is_refused_while_it_streams() -> None:
    import http.server
    import threading

    from spendscope.collector.sync.client import _MAX_BODY, AdminApiError, AdminClient

    class Huge(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                self.wfile.write(b'{"object": "page", "data": ["')
                for _ in range(_MAX_BODY // 65536 + 10):
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Huge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with AdminClient(url, "sk-admin-x", max_retries=0) as c, pytest.raises(AdminApiError, match="larger"):
            c.get_page("organization/costs", [])
    finally:
        server.shutdown()
