"""The dashboard command's wiring (its client's requests and errors: tests/client/)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from spendscope.cli import build_parser
from spendscope.dashboard.cli import APP_PATH, dashboard_argv, dashboard_command
from tests.dashboard.conftest import free_port, wait_http


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
