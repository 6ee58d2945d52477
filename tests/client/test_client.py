"""spendscope.client against a real collector process (token, errors, timeout, JSON POST), and the CLI
commands run with httpx unavailable, as in the SDK-only install."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spendscope.client import ApiClient, ApiError
from tests.collector.helpers import REPO, CollectorProcess, free_port, genai_attrs, make_request, span_dict

pytestmark = [pytest.mark.server, pytest.mark.slow]

TOKEN = "client-s3cret"
WEEK_AGO = datetime.now(UTC) - timedelta(days=7)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    tmp = tmp_path_factory.mktemp("client")
    col = CollectorProcess(tmp / "client.duckdb", env={"SPENDSCOPE_TOKEN": TOKEN}).start()
    try:
        body = make_request([span_dict(genai_attrs(**{"spendscope.feature": "client"}))])
        r = col.post_otlp(body.SerializeToString(), headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        yield col
    finally:
        try:
            col.terminate()
        finally:
            col.kill()


def _error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_token_is_sent(secured: CollectorProcess) -> None:
    c = ApiClient(secured.url, token=TOKEN)
    doc = c.spend(WEEK_AGO, group_by="feature")
    assert [r["calls"] for r in doc["rows"] if r["feature"] == "client"] == [1]
    assert doc["start"].endswith("Z") and doc["group_by"] == ["feature"]
    assert c.rows("/api/v1/prices", {"at": "2026-01-01T00:00:00Z"})


def test_401_says_what_to_do(secured: CollectorProcess) -> None:
    missing = _error(lambda: ApiClient(secured.url).spend(WEEK_AGO))
    assert (missing.kind, missing.status) == ("unauthorized", 401)
    assert "requires a token: set SPENDSCOPE_TOKEN" in missing.message
    wrong = _error(lambda: ApiClient(secured.url, token="nope").post("/api/v1/sync"))
    assert (wrong.kind, wrong.status) == ("unauthorized", 401)
    assert "the token in SPENDSCOPE_TOKEN was refused" in wrong.message


def test_4xx_text_is_surfaced(secured: CollectorProcess) -> None:
    c = ApiClient(secured.url, token=TOKEN)
    bad = _error(lambda: c.spend(WEEK_AGO, group_by="colour"))
    assert (bad.kind, bad.status) == ("bad_request", 400)
    assert bad.message.startswith("/api/v1/spend answered 400: group_by: unknown key 'colour'")
    bad = _error(lambda: c.post("/api/v1/prices/reprice", {"since": "last tuesday"}))
    assert bad.kind == "bad_request" and "since: 'last tuesday' is not an ISO 8601" in bad.message
    assert bad.body == {"error": bad.message.split(": ", 1)[1]}
    gone = _error(lambda: c.get("/api/v1/no-such-thing"))
    assert (gone.kind, gone.status) == ("not_found", 404)
    assert "no /api/v1/no-such-thing endpoint" in gone.message


def test_json_post(secured: CollectorProcess) -> None:
    c = ApiClient(secured.url, token=TOKEN)
    # The body is read: repricing since a time the collector parsed from it.
    answer = c.reprice(WEEK_AGO)
    assert answer["ok"] is True and answer["calls_examined"] >= 1, answer
    # No admin key here: the sync answers 503 with what failed, kept on the error for --json.
    failed = _error(c.sync)
    assert (failed.kind, failed.status) == ("server", 503)
    assert failed.body is not None and failed.body["ok"] is False
    assert failed.message == f"/api/v1/sync answered 503: {failed.body['error']}"


def test_unreachable_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = _error(lambda: ApiClient(url, timeout_s=5).spend(WEEK_AGO))
    assert (err.kind, err.status) == ("unreachable", None)
    assert err.message.startswith(f"Cannot reach the collector at {url} (")
    assert (
        "Start it with `spendscope collector`, or give its URL with --api or SPENDSCOPE_API." in err.message
    )


def test_timeout(secured: CollectorProcess) -> None:
    # A stopped collector still accepts connections (the kernel's backlog) but never answers.
    assert secured.proc is not None
    os.kill(secured.proc.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        err = _error(lambda: ApiClient(secured.url, token=TOKEN, timeout_s=0.5).spend(WEEK_AGO))
        elapsed = time.monotonic() - began
    finally:
        os.kill(secured.proc.pid, signal.SIGCONT)
    assert err.kind == "unreachable"
    assert err.message == f"The collector at {secured.url} did not answer within 0.5 s."
    assert 0.4 < elapsed < 5
    assert ApiClient(secured.url, token=TOKEN).spend(WEEK_AGO)["rows"]  # and it answers again


# The commands, from an install without httpx -----------------------------------------------------

# The base install (the SDK) has neither httpx nor httpx2: block both, then run the CLI.
_NO_HTTPX = (
    "import sys; sys.modules['httpx'] = sys.modules['httpx2'] = None; from spendscope.cli import main; "
)


def _cli(*argv: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPENDSCOPE_")}
    if token:
        env["SPENDSCOPE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-c", _NO_HTTPX + f"raise SystemExit(main({list(argv)!r}))"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_commands_work_without_httpx(secured: CollectorProcess) -> None:
    api = ("--api", secured.url)
    assert _cli("--help").returncode == 0
    spend = _cli("spend", "--by", "feature", "--since", "7d", *api)
    assert spend.returncode == 0, spend.stderr
    assert "client" in spend.stdout and "TOTAL" in spend.stdout
    reprice = _cli("pricing", "reprice", "--since", "7d", *api)
    assert reprice.returncode == 0, reprice.stderr
    assert json.loads(reprice.stdout)["calls_examined"] >= 1
    alerts = _cli("alerts", "list", "--json", *api)
    assert alerts.returncode == 0, alerts.stderr
    assert json.loads(alerts.stdout)["rows"] == []
    sync = _cli("sync", "--json", *api)  # no admin key: a clear failure, and the answer under --json
    assert sync.returncode == 1
    assert json.loads(sync.stdout)["ok"] is False
    assert sync.stderr.startswith("spendscope sync failed: /api/v1/sync answered 503: ")


def test_command_errors_are_one_line_with_the_exit_codes_kept(secured: CollectorProcess) -> None:
    unauthorized = _cli("spend", "--api", secured.url, token=None)
    assert unauthorized.returncode == 1
    assert unauthorized.stderr == (
        "spendscope spend: The collector refused the request: it requires a token: "
        "set SPENDSCOPE_TOKEN to the collector's token.\n"
    )
    down = f"http://127.0.0.1:{free_port()}"
    for argv, code in (
        (("spend",), 1),
        (("sync",), 1),
        (("alerts", "list"), 1),
        (("alerts", "test", "r"), 1),
        (("pricing", "reprice", "--since", "2026-01-01"), 2),
    ):
        run = _cli(*argv, "--api", down)
        assert run.returncode == code, (argv, run.stderr)
        assert f"Cannot reach the collector at {down} (" in run.stderr and run.stderr.count("\n") == 1
    bad_url = _cli("pricing", "reprice", "--since", "2026-01-01", "--api", "ftp://x")
    assert bad_url.returncode == 2 and "must be an http(s) URL" in bad_url.stderr
    bad_time = _cli("pricing", "reprice", "--since", "soon", "--api", secured.url)
    assert bad_time.returncode == 2 and "'soon': use 7d, 24h, 30m or an ISO date/time" in bad_time.stderr


def test_the_client_side_imports_no_server_code() -> None:
    # dashboard/ talks HTTP only and pricing/ stays pure: the client must not pull collector code in.
    code = (
        "import sys; import spendscope.client, spendscope.isotime, spendscope.dimensions, "
        "spendscope.pricing.cli, spendscope.collector.cli, spendscope.collector.sync.cli, "
        "spendscope.collector.alerts.cli; "
        "bad = sorted(m for m in sys.modules if m.startswith(('httpx', 'duckdb', 'starlette', "
        "'spendscope.collector.api', 'spendscope.collector.queries', 'spendscope.dashboard'))); "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_dimensions_are_the_collectors() -> None:
    # One map until the collector imports it too (its copies sit in insights and alert scopes).
    from spendscope.collector.alerts.config import DIMENSIONS as ALERT_SCOPES
    from spendscope.collector.insights import FILTER_COLUMNS
    from spendscope.dimensions import DIMENSIONS

    assert DIMENSIONS == FILTER_COLUMNS == ALERT_SCOPES
