"""End to end over loopback: real app processes and the real openai SDK → fake OpenAI → a real collector.

* ``spendscope.instrument()`` in the app: /api/v1/spend equals the fake's ledger (calls, tokens per
  kind, errors) and the cost the pricing engine gives for the ledger's usage.
* The official OpenTelemetry OpenAI instrumentation (no spendscope in that app): its calls and
  tokens appear correctly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from spendscope.pricing import PriceTable, Usage, price_usage
from tests.collector.helpers import REPO, CollectorProcess

if TYPE_CHECKING:
    from spendscope.fake_openai.server import FakeOpenAI

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.openai3]

_TOKENS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens")


def _run_app(module: str, *args: str, env: dict[str, str] | None = None) -> None:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPENDSCOPE_"))}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]


def _window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}


def _ledger_by_model(fake: FakeOpenAI) -> dict[str, dict[str, Any]]:
    table = PriceTable.default()
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "errors": 0, "cost": Decimal(0), **dict.fromkeys(_TOKENS, 0)}
    )
    for r in fake.ledger.rows():
        m = out[r.model]
        m["calls"] += 1
        if r.status >= 400:
            m["errors"] += 1
            continue
        m["input_tokens"] += r.input_tokens
        m["cached_input_tokens"] += r.cached_tokens
        m["output_tokens"] += r.output_tokens
        m["reasoning_tokens"] += r.reasoning_tokens
        usage = Usage(
            input_tokens=r.input_tokens,
            cached_input_tokens=r.cached_tokens,
            cache_write_input_tokens=r.cache_write_tokens,
            output_tokens=r.output_tokens,
            reasoning_tokens=r.reasoning_tokens,
            input_audio_tokens=r.input_audio_tokens,
            output_audio_tokens=r.output_audio_tokens,
        )
        priced = price_usage(
            table,
            r.model,
            datetime.fromtimestamp(r.ts, UTC),
            usage,
            service_tier=r.service_tier,
            batch=r.batch,
        )
        assert priced.cost is not None, f"test models must be priced: {r.model}"
        m["cost"] += priced.cost
    return dict(out)


def test_spendscope_sdk_app_matches_the_ledger(collector: CollectorProcess, fake_openai: FakeOpenAI) -> None:
    _run_app(
        "tests.collector.sdk_app",
        fake_openai.base_url,
        fake_openai.api_key,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url},
    )
    expected = _ledger_by_model(fake_openai)
    assert sum(m["errors"] for m in expected.values()) == 1  # the injected 429
    # The collector is shared by the module: count this app's calls only.
    doc = collector.get("/api/v1/spend", group_by="service,model", **_window()).json()
    rows = {r["model"]: r for r in doc["rows"] if r["service"] == "e2e-sdk"}
    # Successful attempts are keyed by the response's model on both sides.
    for model, exp in expected.items():
        if exp["errors"] == exp["calls"]:
            continue
        got = rows[model]
        assert got["calls"] - got["errors"] == exp["calls"] - exp["errors"], model
        for k in _TOKENS:
            assert got[k] == exp[k], (model, k)
        assert Decimal(got["cost_usd"]) == exp["cost"], model
    assert sum(r["calls"] for r in rows.values()) == sum(m["calls"] for m in expected.values())
    assert sum(r["errors"] for r in rows.values()) == 1
    assert sum(r["unpriced_calls"] for r in rows.values()) == 0
    cost = sum((Decimal(r["cost_usd"]) for r in rows.values() if r["cost_usd"] is not None), Decimal(0))
    assert cost == sum((m["cost"] for m in expected.values()), Decimal(0))
    by = collector.get("/api/v1/spend", group_by="service,feature,user", **_window()).json()["rows"]
    search = [r for r in by if r["feature"] == "search"]
    assert search and all(r["service"] == "e2e-sdk" and r["user"] == "u-1" for r in search)
    assert sum(r["calls"] for r in search) == 4


def test_official_instrumentation_app(collector: CollectorProcess, fake_openai: FakeOpenAI) -> None:
    pytest.importorskip("opentelemetry.instrumentation.genai.openai")
    _run_app("tests.collector.official_app", fake_openai.base_url, fake_openai.api_key, collector.url)
    expected = _ledger_by_model(fake_openai)
    doc = collector.get("/api/v1/spend", group_by="service,model", **_window()).json()
    rows = {r["model"]: r for r in doc["rows"] if r["service"] == "official-app"}
    assert sum(r["calls"] for r in rows.values()) == sum(m["calls"] for m in expected.values()) == 4
    for model, exp in expected.items():
        got = rows[model]
        assert got["calls"] == exp["calls"] and got["errors"] == 0
        assert got["input_tokens"] == exp["input_tokens"], model
        assert got["output_tokens"] == exp["output_tokens"], model
        assert Decimal(got["cost_usd"]) > 0
