"""Start, watch and stop the demo's processes: fake OpenAI, collector, traffic, alert sink, dashboard.

Every part is a real process talking real HTTP on loopback, exactly as in production, except
OpenAI itself, which is the bundled fake. Ctrl-C or SIGTERM stops everything, children first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from spendscope.client import client_from_env

__all__ = ["DemoOptions", "demo_config", "run_demo"]

INSTRUMENTED = ("checkout-api", "support-bot", "docs-indexer")
UNINSTRUMENTED = ("legacy-reports",)


@dataclass
class DemoOptions:
    duration: float = 0.0  # seconds; 0 runs until Ctrl-C
    collector_port: int = 4318
    dashboard_port: int = 8501
    dashboard: bool = True
    workdir: Path = field(default_factory=lambda: Path(".spendscope-demo"))
    rate: float = 4.0  # calls per second per service
    sync_interval: str = "20s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s: {last}")


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f}s")


def demo_config(sink_url: str, sync_interval: str) -> str:
    """The collector config the demo runs with: sync on a short interval, alerts into the sink."""
    return f"""# Written by `spendscope demo`: a complete collector configuration you can copy.
[sync]
enabled = true
interval = "{sync_interval}"
on_start = true

[alerts]
interval = "10s"

[alerts.channels.demo-sink]
type = "webhook"
url = "{sink_url}/alerts"

[[alerts.rules]]
name = "daily-budget"
kind = "budget"
period = "day"
amount_usd = "0.05"
thresholds = [50, 80, 100]
channels = ["demo-sink"]
severity = "warning"

[[alerts.rules]]
name = "quota-exhausted"
kind = "insufficient_quota"
channels = ["demo-sink"]
severity = "critical"

[[alerts.rules]]
name = "error-rate"
kind = "error_rate"
window = "5m"
threshold_pct = 5
min_calls = 20
channels = ["demo-sink"]
"""


class _Children:
    """The demo's child processes, stopped in reverse start order."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # Ctrl-C reaches the demo, which stops children in order
        )
        self.procs.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None and not name.startswith("traffic"):
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {self.logdir / (name + '.log')}"
                )

    def stop(self, names: tuple[str, ...] | None = None, timeout: float = 15.0) -> None:
        for name, proc in reversed(self.procs):
            if names is not None and not name.startswith(names):
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.procs):
            if names is not None and not name.startswith(names):
                continue
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[bool]]:
    stop = [False]

    def handler(*_: object) -> None:
        stop[0] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_demo(options: DemoOptions) -> int:
    from spendscope.fake_openai.server import DEFAULT_KEYS

    workdir = options.workdir.resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    db = workdir / "demo.duckdb"
    for stale in (db, workdir / "demo.duckdb.wal", workdir / "alerts.jsonl"):
        stale.unlink(missing_ok=True)
    children = _Children(workdir / "logs")
    python = sys.executable
    fake_port, sink_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{fake_port}/v1"
    collector = f"http://127.0.0.1:{options.collector_port}"
    sink_url = f"http://127.0.0.1:{sink_port}"
    config = workdir / "collector.toml"
    config.write_text(demo_config(sink_url, options.sync_interval), encoding="utf-8")
    with _stop_signals() as stop:
        try:
            children.start("fake-openai", [python, "-m", "spendscope.fake_openai", "--port", str(fake_port)])
            children.start(
                "alert-sink",
                [
                    python,
                    "-m",
                    "spendscope.demo.sink",
                    "--port",
                    str(sink_port),
                    "--file",
                    str(workdir / "alerts.jsonl"),
                ],
            )
            _wait_port(fake_port, 20)
            _wait_port(sink_port, 20)
            children.start(
                "collector",
                [
                    python,
                    "-m",
                    "spendscope",
                    "collector",
                    "--port",
                    str(options.collector_port),
                    "--db",
                    str(db),
                    "--config",
                    str(config),
                ],
                env={"OPENAI_ADMIN_KEY": DEFAULT_KEYS["admin_key"], "SPENDSCOPE_OPENAI_BASE_URL": base_url},
            )
            _wait_http(f"{collector}/healthz", 60)
            for index, service in enumerate(INSTRUMENTED + UNINSTRUMENTED):
                argv = [
                    python, "-m", "spendscope.demo.traffic",
                    "--base-url", base_url, "--api-key", DEFAULT_KEYS["api_key"],
                    "--service", service, "--rate", str(options.rate), "--seed", str(index + 1),
                ]  # fmt: skip
                if service in UNINSTRUMENTED:
                    argv.append("--uninstrumented")
                children.start(
                    f"traffic-{service}",
                    argv,
                    env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector, "OTEL_SERVICE_NAME": service},
                )
            dashboard_url = None
            if options.dashboard:
                dashboard_url = _start_dashboard(children, options.dashboard_port, collector)
            _print_banner(options, base_url, collector, dashboard_url, sink_url, workdir)
            deadline = time.monotonic() + options.duration if options.duration > 0 else float("inf")
            while not stop[0] and time.monotonic() < deadline:
                children.check()
                time.sleep(0.5)
            print("\nstopping: traffic first (its spans are flushed), then the rest ...", flush=True)
            children.stop(("traffic",))
            with contextlib.suppress(Exception):
                _print_summary(collector)
        finally:
            children.stop()
    print("demo stopped.", flush=True)
    return 0


def _start_dashboard(children: _Children, port: int, collector: str) -> str | None:
    import importlib

    try:
        dashboard_argv = importlib.import_module("spendscope.dashboard.cli").dashboard_argv
    except (ImportError, AttributeError):
        print("(the dashboard is not available in this install; skipping it)", flush=True)
        return None
    children.start("dashboard", dashboard_argv(port=port, api=collector))
    return f"http://127.0.0.1:{port}"


def _print_banner(
    options: DemoOptions, base_url: str, collector: str, dashboard: str | None, sink: str, workdir: Path
) -> None:
    lines = [
        "",
        "spendscope demo is running (Ctrl-C stops everything)",
        f"  fake OpenAI       {base_url}",
        f"  collector (OTLP)  {collector}/v1/traces    query API {collector}/api/v1/spend",
        f"  dashboard         {dashboard or '(disabled)'}",
        f"  alert sink        {sink}  -> {workdir / 'alerts.jsonl'}",
        f"  traffic           {', '.join(INSTRUMENTED)} (instrumented);",
        f"                    {', '.join(UNINSTRUMENTED)} (not instrumented: billed, not tracked)",
        f"  logs              {workdir / 'logs'}",
        f"  duration          {f'{options.duration:.0f}s' if options.duration else 'until Ctrl-C'}",
        "",
    ]
    print("\n".join(lines), flush=True)


def _print_summary(collector: str) -> None:
    spend = client_from_env(api=collector).spend(datetime(2000, 1, 1, tzinfo=UTC), group_by="service")
    print("spend by service (tracked by the collector):")
    for row in spend.get("rows", []):
        print(f"  {row.get('service')!s:<16} {row.get('calls')!s:>6} calls  ${row.get('cost_usd')}")
    totals = spend.get("totals", {})
    print(f"  total            {totals.get('calls')!s:>6} calls  ${totals.get('cost_usd')}")
