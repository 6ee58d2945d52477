"""Deliveries reach a real local HTTP receiver (Slack, webhook, PagerDuty shapes) and a real SMTP server;
failing receivers are retried with backoff, hanging ones never block evaluation, restarts neither
repeat nor lose a notification."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from spendscope.collector.alerts.delivery import DeliveryWorker, backoff_s
from spendscope.collector.alerts.engine import AlertEngine
from spendscope.collector.alerts.routes import list_alerts, list_deliveries
from spendscope.collector.store import Store

from .helpers import T0, Clock, Receiver, add_call, config, free_port, open_store, start_receiver


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    r.hang_s = 2.0
    yield r
    r.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    yield sink, port
    ctl.stop()


def rules_text(url: str, smtp_port: int, prefix: str, fail_path: str = "ok") -> str:
    return f"""
[alerts.channels.slack]
type = "slack"
url = "{url}/ok/{prefix}/slack"

[alerts.channels.hook]
type = "webhook"
url = "{url}/{fail_path}/{prefix}/hook"
headers = {{X-Team = "ops"}}

[alerts.channels.pd]
type = "pagerduty"
url = "{url}/pd/{prefix}"
routing_key = "R0UT1NG"

[alerts.channels.mail]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
from = "spendscope@example.com"
to = ["oncall@example.com"]

[[alerts.rules]]
name = "quota"
kind = "insufficient_quota"
window = "15m"
renotify = "1h"
channels = ["slack", "hook", "pd", "mail"]
"""


def make(store: Store, clock: Clock, text: str, **kw: Any) -> tuple[AlertEngine, DeliveryWorker]:
    cfg = config(text)
    worker = DeliveryWorker(store, cfg.channels, clock, poll_s=0.05, **kw)
    engine = AlertEngine(cfg, store, clock, worker)
    worker.start()
    return engine, worker


def quota_error(store: Store, clock: Clock) -> None:
    add_call(
        store, clock() - timedelta(seconds=5), is_error=True, status_code=429, error_type="insufficient_quota"
    )


def of(rec: Receiver, prefix: str) -> list[Any]:
    return [g for g in rec.got if f"/{prefix}/" in g.path + "/"]


def test_payload_shapes_firing_and_resolve(
    tmp_path: Path, receiver: Receiver, smtp: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp
    store = open_store(tmp_path / "d.duckdb")
    clock = Clock(T0)
    engine, worker = make(store, clock, rules_text(receiver.url, port, "shape"))
    try:
        quota_error(store, clock)
        assert [e.kind for e in engine.tick().events] == ["firing"]
        receiver.wait_for(lambda g: len(of(receiver, "shape")) >= 3)
        slack = next(g.body for g in of(receiver, "shape") if g.path.endswith("/slack"))
        assert slack["text"].startswith("[FIRING] critical quota") and "insufficient_quota" in slack["text"]
        assert slack["attachments"][0]["color"] == "#d32f2f"
        hook = next(g.body for g in of(receiver, "shape") if g.path.endswith("/hook"))
        assert hook["event"] == "firing" and hook["rule"] == "quota" and hook["state"] == "firing"
        assert (
            hook["severity"] == "critical"
            and hook["value"] == 1.0
            and hook["started_at"].startswith("2026-03-10")
        )
        pd = next(g.body for g in of(receiver, "shape") if g.path.startswith("/pd/"))
        assert pd["event_action"] == "trigger" and pd["routing_key"] == "R0UT1NG"
        assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "spendscope"
        dedup = pd["dedup_key"]
        deadline = time.monotonic() + 10
        while not sink.messages and time.monotonic() < deadline:
            time.sleep(0.02)
        rcpts, msg = sink.messages[0]
        assert rcpts == ["oncall@example.com"] and "[FIRING]" in msg["Subject"]
        assert "insufficient_quota" in msg.get_payload()

        clock.advance(minutes=20)
        assert [e.kind for e in engine.tick().events] == ["resolved"]
        receiver.wait_for(lambda g: len(of(receiver, "shape")) >= 6)
        pds = [g.body for g in of(receiver, "shape") if g.path.startswith("/pd/")]
        assert pds[1] == {"routing_key": "R0UT1NG", "dedup_key": dedup, "event_action": "resolve"}
        while len(sink.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "[RESOLVED]" in sink.messages[1][1]["Subject"]
        wait_settled(store)
        rows = list_deliveries(store.cursor(), None, 100)
        assert {r["status"] for r in rows} == {"delivered"} and len(rows) == 8
    finally:
        worker.stop()
        store.close()


def wait_attempts(store: Store, n: int, timeout: float = 10.0) -> None:
    """Until ``n`` attempts are recorded (the receiver sees a request before its outcome is written)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cur = store.cursor()
        row = cur.execute("SELECT count(*) FROM alert_delivery_attempts").fetchone()
        cur.close()
        if row and row[0] >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} attempts recorded")


def wait_settled(store: Store, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cur = store.cursor()
        n = cur.execute("SELECT count(*) FROM alert_deliveries WHERE status = 'pending'").fetchone()
        cur.close()
        if n and n[0] == 0:
            return
        time.sleep(0.02)
    raise AssertionError("deliveries still pending")


def test_failing_receiver_is_retried_with_backoff_and_surfaces(tmp_path: Path, receiver: Receiver) -> None:
    assert [backoff_s(a, 10, 600) for a in (1, 2, 3, 8)] == [10, 20, 40, 600]
    store = open_store(tmp_path / "f.duckdb")
    clock = Clock(T0)
    text = rules_text(receiver.url, free_port(), "retry", fail_path="fail/2").replace(
        '["slack", "hook", "pd", "mail"]', '["hook"]'
    )
    engine, worker = make(store, clock, text, retry_base_s=30)
    try:
        quota_error(store, clock)
        engine.tick()
        path = "/fail/2/retry/hook"
        deadline = time.monotonic() + 10
        while receiver.counts.get(path, 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        assert receiver.counts[path] == 1  # not retried before the backoff has passed
        row = list_alerts(store.cursor(), "firing", clock())[0]
        assert row["deliveries"]["pending"] == 1 and "HTTP 500" in row["deliveries"]["last_error"]
        wait_attempts(store, 1)
        clock.advance(seconds=30)
        worker.wake()
        wait_attempts(store, 2)
        clock.advance(seconds=59)  # the second backoff doubles
        worker.wake()
        time.sleep(0.3)
        assert receiver.counts[path] == 2
        clock.advance(seconds=1)
        worker.wake()
        receiver.wait_for(lambda g: any(x.path == path for x in g))
        assert receiver.counts[path] == 3
        wait_settled(store)
        [d] = list_deliveries(store.cursor(), None, 10)
        assert d["status"] == "delivered" and d["attempts"] == 3
        cur = store.cursor()
        attempts = cur.execute(
            "SELECT attempt, ok, status_code FROM alert_delivery_attempts ORDER BY attempt"
        ).fetchall()
        assert attempts == [(1, False, 500), (2, False, 500), (3, True, 200)]
    finally:
        worker.stop()
        store.close()


def test_gives_up_after_max_attempts(tmp_path: Path, receiver: Receiver) -> None:
    store = open_store(tmp_path / "g.duckdb")
    clock = Clock(T0)
    text = (
        rules_text(receiver.url, free_port(), "giveup", fail_path="fail/99")
        .replace('["slack", "hook", "pd", "mail"]', '["hook"]')
        .replace('headers = {X-Team = "ops"}', 'headers = {X-Team = "ops"}\nmax_attempts = 2')
    )
    engine, worker = make(store, clock, text, retry_base_s=0.01)
    try:
        quota_error(store, clock)
        engine.tick()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            clock.advance(seconds=1)
            worker.wake()
            rows = list_deliveries(store.cursor(), "failed", 10)
            if rows:
                break
            time.sleep(0.05)
        assert rows and rows[0]["attempts"] == 2 and "HTTP 500" in rows[0]["last_error"]
        assert list_alerts(store.cursor(), "firing", clock())[0]["deliveries"]["failed"] == 1
    finally:
        worker.stop()
        store.close()


def test_hanging_receiver_never_blocks_evaluation(tmp_path: Path, receiver: Receiver) -> None:
    store = open_store(tmp_path / "h.duckdb")
    clock = Clock(T0)
    text = (
        rules_text(receiver.url, free_port(), "hang")
        .replace(f"{receiver.url}/ok/hang/hook", f"{receiver.url}/hang/x/hook")
        .replace('headers = {X-Team = "ops"}', 'headers = {X-Team = "ops"}\ntimeout_s = 4')
        .replace('["slack", "hook", "pd", "mail"]', '["hook", "slack"]')
    )
    engine, worker = make(store, clock, text, retry_base_s=60)
    receiver.hang_s = 6.0
    try:
        quota_error(store, clock)
        started = time.monotonic()
        assert [e.kind for e in engine.tick().events] == ["firing"]
        for _ in range(5):  # ticks go on at full speed while the hook hangs
            clock.advance(minutes=1)
            engine.tick()
        receiver.wait_for(lambda g: any(x.path == "/ok/hang/slack" for x in g))  # other channels unaffected
        # All ticks are done and Slack delivered while the hook's first attempt is still hanging.
        assert time.monotonic() - started < 4.0
        hook = [d for d in list_deliveries(store.cursor(), None, 10) if d["channel"] == "hook"]
        assert hook[0]["attempts"] == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            failed = [d for d in list_deliveries(store.cursor(), None, 10) if d["channel"] == "hook"]
            if failed and failed[0]["last_error"]:
                break
            time.sleep(0.05)
        assert "Timeout" in failed[0]["last_error"] and failed[0]["status"] == "pending"
    finally:
        receiver.hang_s = 2.0
        worker.stop()
        store.close()


def test_restart_mid_incident_no_duplicate_no_lost_resolution(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "r.duckdb"
    clock = Clock(T0)
    text = rules_text(receiver.url, free_port(), "restart").replace(
        '["slack", "hook", "pd", "mail"]', '["slack"]'
    )
    store = open_store(path)
    engine, worker = make(store, clock, text)
    quota_error(store, clock)
    assert [e.kind for e in engine.tick().events] == ["firing"]
    receiver.wait_for(lambda g: len(of(receiver, "restart")) == 1)
    worker.stop()
    store.close()

    # The collector comes back ten minutes later, the problem still there: no second "firing".
    clock.advance(minutes=10)
    store = open_store(path)
    engine, worker = make(store, clock, text)
    quota_error(store, clock)
    assert engine.tick().events == []
    # It resolves; the process dies before the worker could send the resolution.
    worker.stop()
    clock.advance(minutes=20)
    assert [e.kind for e in engine.tick().events] == ["resolved"]
    store.close()

    store = open_store(path)
    engine, worker = make(store, clock, text)
    try:
        receiver.wait_for(lambda g: len(of(receiver, "restart")) == 2)
        texts = [g.body["text"] for g in of(receiver, "restart")]
        assert texts[0].startswith("[FIRING]") and texts[1].startswith("[RESOLVED]")
        assert engine.tick().events == []
        time.sleep(0.2)
        assert len(of(receiver, "restart")) == 2
        rows = list_alerts(store.cursor(), "resolved", clock())
        assert rows[0]["state"] == "resolved" and rows[0]["deliveries"]["delivered"] == 2
    finally:
        worker.stop()
        store.close()


def test_a_receiver_answering_a_huge_body_costs_only_its_start(tmp_path: Path) -> None:
    # A webhook that answers an error with an endless body: one attempt, a short readable error,
    # and the collector never holds the body.
    import http.server
    import threading

    from spendscope.collector.alerts.channels.transport import post_json

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(500)
            self.end_headers()
            try:
                for _ in range(10_000):  # 640 MB if read whole
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        out = post_json(f"http://127.0.0.1:{server.server_address[1]}/hook", {"a": 1}, timeout_s=10)
        assert not out.ok and out.status_code == 500 and out.error is not None
        assert len(out.error) < 400 and time.monotonic() - t0 < 5
    finally:
        server.shutdown()
