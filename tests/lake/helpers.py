"""Collector replicas on one lake: config files, starting them, waiting for them to settle."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict

__all__ = ["lake_config", "make_batch", "replica", "spend_totals", "wait_for", "wait_settled"]


def lake_config(path: Path, catalog: str, data_path: Path, extra: str = "", interval_s: float = 1) -> Path:
    path.write_text(
        f'[lake]\ncatalog = "{catalog}"\ndata_path = "{data_path}/"\nship_interval_s = {interval_s}\n'
        f"\n[collector]\nrollup_interval_s = 2\n{extra}"
    )
    return path


def replica(
    tmp: Path, name: str, config: Path, env: Mapping[str, str] | None = None, port: int | None = None
) -> CollectorProcess:
    """A collector process with its own local file, under the replica name ``name``."""
    return CollectorProcess(
        tmp / f"{name}.duckdb",
        config=config,
        port=port,
        env={"SPENDSCOPE_REPLICA": name, "SPENDSCOPE_LOG_LEVEL": "INFO", **(env or {})},
    )


def make_batch(
    n: int, model: str = "gpt-4o-mini", service: str = "lake-test", start_ns: int | None = None
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """An OTLP request of ``n`` spans with token usage; its body and its (trace, span) ids."""
    t0 = start_ns or time.time_ns() - 60 * 10**9
    spans = [
        span_dict(
            genai_attrs(
                model, **{"gen_ai.usage.input_tokens": 100 + i % 7, "gen_ai.usage.output_tokens": 10}
            ),
            start_ns=t0 + i * 1000,
        )
        for i in range(n)
    ]
    body = make_request(spans, service=service).SerializeToString()
    return body, [(s["trace_id"], s["span_id"]) for s in spans]


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def lake_status(proc: CollectorProcess) -> dict[str, Any]:
    r = proc.get("/api/v1/lake")
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def wait_settled(procs: list[CollectorProcess], timeout: float = 60.0) -> None:
    """Until every replica has shipped everything it acknowledged."""
    for p in procs:
        wait_for(lambda p=p: lake_status(p)["unshipped_rows"] == 0, timeout, f"{p.url} to ship")


def spend_totals(proc: CollectorProcess, service: str = "lake-test", **params: Any) -> dict[str, Any]:
    r = proc.get("/api/v1/spend", start="2020-01-01T00:00:00Z", end="2100-01-01T00:00:00Z", **params)
    r.raise_for_status()
    rows = [x for x in r.json()["rows"] if x.get("service", service) == service]
    if "service" in params.get("group_by", ""):
        return rows[0] if rows else {"calls": 0}
    return dict(r.json()["totals"])
