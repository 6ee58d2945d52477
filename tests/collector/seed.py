"""A small, varied history for tests that read the whole API: several models, projects and services,
errors and 429s, an unpriced model, rate-limit headers, users, features and tags, over several days;
and a collector that holds it, syncing against the fake OpenAI."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spendscope import semconv as sc
from spendscope.fake_openai.server import FakeOpenAI
from tests.collector.helpers import CollectorProcess, genai_attrs, make_request, span_dict

__all__ = ["DAY_NS", "seed", "seeded_collector"]

DAY_NS = 86_400 * 10**9
_MODELS = ("gpt-4o-mini", "gpt-4o", "o4-mini", "no-such-model-xyz")


def _span(i: int, now_ns: int) -> dict[str, Any]:
    model = _MODELS[i % len(_MODELS)]
    status = 429 if i % 11 == 0 else 500 if i % 13 == 0 else 200
    attrs: dict[str, Any] = {
        "gen_ai.response.model": f"{model}-2024-08-06" if i % 2 else None,
        "http.response.status_code": status,
        sc.OPENAI_PROJECT: f"proj_{i % 3}",
        sc.USER: f"user-{i % 5}",
        sc.FEATURE: ("search", "chat", "summaries")[i % 3],
        sc.RATELIMIT_LIMIT_REQUESTS: 500,
        sc.RATELIMIT_REMAINING_REQUESTS: 499 - i,
        sc.RATELIMIT_LIMIT_TOKENS: 200_000,
        sc.RATELIMIT_REMAINING_TOKENS: 200_000 - 900 * i,
        sc.RATELIMIT_RESET_REQUESTS_S: 0.12,
        sc.RATELIMIT_RESET_TOKENS_S: 1.5,
        f"{sc.TAG_PREFIX}team": ("core", "growth")[i % 2],
    }
    if status == 200:
        attrs.update(
            {
                "gen_ai.usage.input_tokens": 1000 + 17 * i,
                "gen_ai.usage.cache_read.input_tokens": 256 * (i % 3),
                "gen_ai.usage.output_tokens": 200 + 7 * i,
                "gen_ai.usage.reasoning.output_tokens": 64 * (i % 2),
            }
        )
    else:
        attrs["error.type"] = "rate_limit_exceeded" if status == 429 else "server_error"
    # Spread over the last four days (the first ones are whole days the rollup can answer).
    start = now_ns - ((i // 4) % 4) * DAY_NS - (i * 37 % 3600) * 10**9
    return span_dict(genai_attrs(model, **attrs), start_ns=start, error=status != 200)


def seed(
    collector: CollectorProcess,
    n: int = 60,
    *,
    now_ns: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> int:
    """Send ``n`` calls in three services' requests, and one GenAI span without a model (rejected);
    return how many calls were sent."""
    now_ns = now_ns or time.time_ns()
    spans = [_span(i, now_ns) for i in range(n)]
    for k, service in enumerate(("checkout", "search-api", "batch-jobs")):
        batch = spans[k::3]
        if k == 0:
            batch.append(span_dict(genai_attrs(**{"gen_ai.request.model": None}), start_ns=now_ns))
        body = make_request(batch, service=service).SerializeToString()
        resp = collector.post_otlp(body, headers=headers)
        assert resp.status_code == 200, resp.text
    return n


@contextmanager
def seeded_collector(
    folder: Path, fake: FakeOpenAI, config: str, token: str | None = None
) -> Iterator[CollectorProcess]:
    """A collector on ``folder`` with ``config``, the fake's admin key (so a sync works) and
    ``token`` if given, seeded by :func:`seed`; stopped at the end."""
    (folder / "spendscope.toml").write_text(config)
    env = {"OPENAI_ADMIN_KEY": fake.admin_key, "SPENDSCOPE_OPENAI_BASE_URL": fake.base_url}
    if token:
        env["SPENDSCOPE_TOKEN"] = token
    proc = CollectorProcess(folder / "spendscope.duckdb", env=env, config=folder / "spendscope.toml")
    proc.start()
    try:
        seed(proc, headers={"Authorization": f"Bearer {token}"} if token else None)
        yield proc
    finally:
        try:
            proc.terminate()
        finally:
            proc.kill()
