"""One real collector per test session, seeded with known spans, and helpers to read its API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.dashboard import seed

TOKEN = "dash-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s: {last}")


@dataclass
class Collector:
    url: str
    token: str
    calls: list[seed.Call]

    def get(self, path: str, **params: str) -> dict:
        r = httpx.get(
            self.url + path, params=params, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    pytest.importorskip("duckdb")
    tmp = tmp_path_factory.mktemp("collector")
    port = free_port()
    env = {**os.environ, "SPENDSCOPE_TOKEN": TOKEN}
    env.pop("SPENDSCOPE_CONFIG", None)
    env.pop("OPENAI_ADMIN_KEY", None)
    # One rule the seeded data breaks (3 of 14 calls failed), evaluated often, so a firing alert shows.
    config = tmp / "spendscope.toml"
    config.write_text(
        '[alerts]\ninterval = "1s"\n\n[[alerts.rules]]\nname = "errors"\nkind = "error_rate"\n'
        'threshold_pct = 10\nwindow = "2h"\nmin_calls = 5\n'
    )
    log = (tmp / "collector.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spendscope",
            "collector",
            "--port",
            str(port),
            "--db",
            str(tmp / "t.duckdb"),
            "--config",
            str(config),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(url + "/healthz", 30, proc)
        except RuntimeError:
            log.flush()
            raise RuntimeError((tmp / "collector.log").read_text()[-2000:]) from None
        sent = seed.send(url, TOKEN)
        yield Collector(url, TOKEN, sent)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    d = Path(os.environ.get("SPENDSCOPE_SCREENSHOTS", "/tmp/spendscope-dashboard-screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d
