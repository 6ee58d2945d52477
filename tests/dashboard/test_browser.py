"""Headless Chromium loads every page of the running dashboard: no exception, a screenshot each."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from spendscope.dashboard.cli import run_dashboard
from tests.dashboard.conftest import Collector, free_port, wait_http

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.browser]

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


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
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
        f"--user-data-dir={tmp}",
        "--window-size=1400,1800",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.parametrize(("path", "title"), PAGES)
def test_page_renders_without_exception(
    dashboard: str, path: str, title: str, tmp_path: Path, screenshots_dir: Path
) -> None:
    url = f"{dashboard}/{path}"
    heading = f'<h1 id="{title.lower().replace(" ", "-")}"'
    dom = ""
    # Streamlit draws in the browser over a websocket in real time while Chromium's virtual clock
    # may run ahead: give a page that had not drawn its heading yet a longer budget.
    for budget in (15_000, 30_000, 60_000):
        dom = _chromium(tmp_path / "dom", f"--virtual-time-budget={budget}", "--dump-dom", url).stdout
        if heading in dom:
            break
    for marker in EXCEPTION_MARKERS:
        assert marker not in dom, f"{url}: {marker} in the rendered page"
    assert heading in dom, f"{url}: page heading {title!r} never rendered"
    shot = screenshots_dir / f"{path or 'overview'}.png"
    shot.unlink(missing_ok=True)
    _chromium(tmp_path / "shot", "--virtual-time-budget=20000", f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 10_000, f"no screenshot of {url}"
