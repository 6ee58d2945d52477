"""Every example runs against the fake OpenAI and a real collector, and its calls arrive priced."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("duckdb")

import httpx

from tests.collector.helpers import CollectorProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FASTAPI_DRIVER = """
from fastapi.testclient import TestClient
import app
with TestClient(app.app) as client:
    assert client.post("/answer", json={"text": "hi"}, headers={"x-user-id": "u-17"}).status_code == 200
    response = client.post("/summarize", json={"text": "a long text"}, headers={"x-user-id": "u-18"})
    assert response.status_code == 200
"""


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(Path(tmp_path_factory.mktemp("examples")) / "examples.duckdb").start()
    try:
        yield proc
    finally:
        proc.terminate()


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "AZURE_", "SPENDSCOPE_"))
    }
    result = subprocess.run(
        argv, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _env(collector: CollectorProcess, fake: Any, extra: dict[str, str]) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": fake.api_key,
        "GATEWAY_BASE_URL": fake.base_url,
        "AZURE_OPENAI_ENDPOINT": fake.root_url,
        "AZURE_OPENAI_API_KEY": fake.azure_api_key,
        "OPENAI_API_VERSION": "2024-10-21",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        **extra,
    }


def _spend_by(collector: CollectorProcess, key: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(
        f"{collector.url}/api/v1/spend",
        params={"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z", "group_by": key},
        timeout=10,
    )
    response.raise_for_status()
    return {row[key]: row for row in response.json()["rows"]}


@pytest.mark.parametrize(
    ("example", "argv", "service", "extra_env"),
    [
        ("minimal", ["app.py"], "minimal-example", {"OTEL_SERVICE_NAME": "minimal-example"}),
        ("async_batch", ["job.py", "job-7"], "nightly-classifier", {}),
        ("gateway", ["app.py"], "gateway-app", {"GATEWAY_HOST": "127.0.0.1"}),
        ("azure", ["app.py"], "azure-app", {}),
        ("fastapi_service", ["-c", FASTAPI_DRIVER], "support-api", {}),
    ],
)
def test_example_runs_and_its_calls_arrive(
    collector: CollectorProcess,
    fake_openai_server: Any,
    example: str,
    argv: list[str],
    service: str,
    extra_env: dict[str, str],
) -> None:
    _run([sys.executable, *argv], EXAMPLES / example, _env(collector, fake_openai_server, extra_env))
    rows = _spend_by(collector, "service")
    assert service in rows, rows
    assert rows[service]["calls"] >= 1
    assert rows[service]["input_tokens"] > 0


def test_fastapi_example_attributes_users_and_routes(
    collector: CollectorProcess, fake_openai_server: Any
) -> None:
    # Runs the example itself, so it holds whatever order the tests run in.
    _run(
        [sys.executable, "-c", FASTAPI_DRIVER],
        EXAMPLES / "fastapi_service",
        _env(collector, fake_openai_server, {}),
    )
    users = _spend_by(collector, "user")
    features = _spend_by(collector, "feature")
    assert {"u-17", "u-18"} <= set(users)
    assert {"/answer", "/summarize"} <= set(features)


def test_otel_collector_config_forwards_to_spendscope() -> None:
    text = (EXAMPLES / "otel_collector" / "otelcol.yaml").read_text()
    for needle in ("otlphttp/spendscope", "compression: gzip", "gen_ai.operation.name", "traces/spendscope"):
        assert needle in text


def test_collector_config_example_is_valid() -> None:
    from spendscope.collector.alerts.config import parse_alerts
    from spendscope.collector.config import load_config
    from spendscope.collector.sync.config import parse_sync_settings

    path = EXAMPLES / "collector_config" / "spendscope.toml"
    raw = tomllib.loads(path.read_text())
    env = {"SLACK_WEBHOOK_URL": "http://hooks.local/x", "PAGERDUTY_ROUTING_KEY": "k", "SMTP_PASSWORD": "p"}
    config = load_config(path, env)
    assert config.collector.port == 4318
    alerts = parse_alerts(raw, str(path), env)
    assert {rule.kind for rule in alerts.rules} >= {
        "budget",
        "error_rate",
        "insufficient_quota",
        "capture_rate",
    }
    assert set(alerts.channels) == {"finance-slack", "oncall-pagerduty", "ops-webhook", "finance-email"}
    assert parse_sync_settings(raw, {"OPENAI_ADMIN_KEY": "sk-admin-x"}).enabled


def test_demo_config_is_valid() -> None:
    from spendscope.collector.alerts.config import parse_alerts
    from spendscope.demo.runner import demo_config

    raw = tomllib.loads(demo_config("http://127.0.0.1:9", "20s"))
    assert {rule.name for rule in parse_alerts(raw, "demo").rules} >= {"daily-budget", "quota-exhausted"}
