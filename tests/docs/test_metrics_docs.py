"""The documentation built on the metrics names only what ``/metrics`` serves: the Grafana dashboard,
the Prometheus rules, and the metrics page names every family."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from spendscope.collector.prometheus import Group, Stored, families, render
from spendscope.collector.schema import TOKEN_FIELDS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _served() -> set[str]:
    """Every sample name /metrics can write (one of each kind of data present)."""
    stored = Stored(
        [Group(("s", "m", "p"), 2, 1, dict.fromkeys(TOKEN_FIELDS, 5), Decimal("0.5"), 0)],
        [(("m", "p", "requests"), 0.5)],
        {"r": 1},
        datetime.now(UTC).timestamp(),
    )
    text = render(families(stored, 10, rules=["r"], sync_configured=True)).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def _named(text: str) -> set[str]:
    return set(re.findall(r"\bspendscope_[a-z_]+", text))


def test_the_dashboard_and_the_rules_use_served_metrics() -> None:
    served = _served()
    dashboard = json.loads((DOCS / "grafana" / "spendscope.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"]]
    used = _named("\n".join(exprs))
    assert len(used) >= 10 and used <= served, used - served
    rules = (DOCS / "prometheus" / "spendscope-rules.yml").read_text(encoding="utf-8")
    assert _named(rules) <= served, _named(rules) - served
    page = (DOCS / "metrics.md").read_text(encoding="utf-8")
    assert _named(page) == served, "docs/metrics.md names what /metrics serves"
