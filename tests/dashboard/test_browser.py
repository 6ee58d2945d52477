"""Headless Chromium loads every page of the running dashboard: no exception, a screenshot each."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spendscope.dashboard.cli import run_dashboard
from tests.dashboard.conftest import Collector, free_port, wait_http

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.browser]

connect = pytest.importorskip("websockets.sync.client").connect
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# (url path, the page's title): st.navigation names each page's URL after its file.
PAGES = [
    ("", "Overview"),
    ("spend", "Spend"),
    ("reconciliation", "Reconciliation"),
    ("rate_limits", "Rate limits"),
    ("reliability", "Reliability"),
    ("alerts", "Alerts"),
    ("pricing", "Pricing"),
]
# What Streamlit renders for an uncaught exception, and Python's own marker.
EXCEPTION_MARKERS = ("stException", "Traceback (most recent call last)", "StreamlitAPIException")


@pytest.fixture(scope="module")
def dashboard(collector: Collector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    port = free_port()
    log = (tmp_path_factory.mktemp("dashboard") / "streamlit.log").open("wb")
    proc = run_dashboard(port, collector.url, collector.token, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_stcore/health", 60, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


class _Browser:
    """One headless Chromium driven over the DevTools protocol: one process for every page."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--window-size=1400,1800",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets: list[dict] = []
        while not targets and time.monotonic() < deadline:
            targets = [
                t
                for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                if t["type"] == "page"
            ]
            time.sleep(0.1)
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(
            connect(targets[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=10)
        )
        self._id = 0

    def call(self, method: str, **params: object) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
        raise TimeoutError(method)

    def dom(self) -> str:
        r = self.call("Runtime.evaluate", expression="document.documentElement.outerHTML", returnByValue=True)
        return str(r["result"].get("value", ""))

    def close(self) -> None:
        self._stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser(dashboard: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Browser]:
    b = _Browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield b
    finally:
        b.close()


def _heading(title: str) -> str:
    return f'<h1 id="{title.lower().replace(" ", "-")}"'


@pytest.mark.parametrize(("path", "title"), PAGES)
def test_page_renders_without_exception(
    dashboard: str, browser: _Browser, path: str, title: str, screenshots_dir: Path
) -> None:
    url = f"{dashboard}/{path}"
    browser.call("Page.navigate", url=url)
    # Streamlit draws client-side over a websocket: wait for the page's heading, then for the
    # page to stop changing (charts and tables arrive after it).
    dom, previous = "", None
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        dom = browser.dom()
        if _heading(title) in dom and "stSkeleton" not in dom and dom == previous:
            break
        previous = dom
        time.sleep(0.5)
    for marker in EXCEPTION_MARKERS:
        assert marker not in dom, f"{url}: {marker} in the rendered page"
    assert _heading(title) in dom, f"{url}: page heading {title!r} never rendered"
    shot = screenshots_dir / f"{path or 'overview'}.png"
    data = browser.call("Page.captureScreenshot", format="png")["data"]
    shot.write_bytes(base64.b64decode(data))
    assert shot.stat().st_size > 10_000, f"screenshot of {url} looks empty"
