"""A traffic generator: an app that calls the (fake) OpenAI API the way real services do.

Run as ``python -m spendscope.demo.traffic --base-url URL --api-key KEY --service NAME``: it makes a
realistic mix of chat, streaming, Responses and embeddings calls for a few users and features, with
the occasional 429 (retried by the SDK), bad request and quota error. With ``--uninstrumented`` it
is an app nobody instrumented: its spend only shows up in OpenAI's bill (the Costs API).
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SERVICES", "main"]


@dataclass(frozen=True)
class Service:
    name: str
    project: str
    features: tuple[str, ...]
    models: tuple[str, ...]


SERVICES = {
    "checkout-api": Service(
        "checkout-api", "proj_checkout", ("fraud-check", "receipt-summary"), ("gpt-4o-mini", "gpt-4o")
    ),
    "support-bot": Service(
        "support-bot", "proj_support", ("answer", "triage", "search"), ("gpt-4o", "gpt-5-mini", "o4-mini")
    ),
    "docs-indexer": Service(
        "docs-indexer", "proj_search", ("embed", "rerank"), ("text-embedding-3-small", "gpt-4.1-mini")
    ),
    "legacy-reports": Service(
        "legacy-reports", "proj_finance", ("monthly-report",), ("gpt-4o", "gpt-3.5-turbo")
    ),
}
USERS = ("u-ana", "u-bo", "u-chen", "u-dara", "u-eli", "u-fay")
PROMPTS = (
    "Summarize this order for the customer.",
    "Is this refund request likely to be fraud? Explain briefly.",
    "Draft a friendly answer about our shipping times.",
    "Classify this ticket: billing, shipping or product.",
    "Write three bullet points about last month's cloud spend.",
)


def _call(client: Any, service: Service, rng: random.Random) -> None:
    model = rng.choice(service.models)
    prompt = rng.choice(PROMPTS) * rng.randint(1, 30)
    headers: dict[str, str] = {"x-fake-cached-tokens": str(rng.choice((0, 0, 0, 64, 256)))}
    roll = rng.random()
    if roll < 0.04:
        headers["x-fake-fault"] = "status=429;code=rate_limit_exceeded;type=tokens;retry_after_ms=50;times=1"
    elif roll < 0.06:
        headers["x-fake-fault"] = "status=400;code=context_length_exceeded"
    elif roll < 0.065:
        headers["x-fake-fault"] = (
            "status=429;code=insufficient_quota;type=insufficient_quota;should_retry=false"
        )
    elif roll < 0.08:
        headers["x-fake-fault"] = "status=503;should_retry=true;times=1"
    messages = [{"role": "user", "content": prompt}]
    if model.startswith("text-embedding"):
        client.embeddings.create(model=model, input=[prompt] * rng.randint(1, 8), extra_headers=headers)
    elif model.startswith(("gpt-5", "o4")) and rng.random() < 0.5:
        client.responses.create(model=model, input=prompt, extra_headers=headers)
    elif rng.random() < 0.45:
        stream = client.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            service_tier=rng.choice(("auto", "auto", "auto", "flex", "priority")),
            extra_headers=headers,
        )
        for index, _chunk in enumerate(stream):
            if index > 3 and rng.random() < 0.02:  # a user closes the tab mid-answer
                stream.close()
                break
    else:
        client.chat.completions.create(model=model, messages=messages, extra_headers=headers)


def run(
    *,
    base_url: str,
    api_key: str,
    service: Service,
    duration: float,
    rate: float,
    instrumented: bool,
    seed: int,
    should_stop: Callable[[], bool],
) -> int:
    import openai

    if instrumented:
        import spendscope

        spendscope.instrument(service_name=service.name)
    rng = random.Random(seed)
    client = openai.OpenAI(
        base_url=base_url, api_key=api_key, max_retries=2, default_headers={"OpenAI-Project": service.project}
    )
    calls = 0
    deadline = time.monotonic() + duration if duration > 0 else float("inf")
    while time.monotonic() < deadline and not should_stop():
        try:
            if instrumented:
                import spendscope

                with spendscope.attributes(user=rng.choice(USERS), feature=rng.choice(service.features)):
                    _call(client, service, rng)
            else:
                _call(client, service, rng)
        except openai.OpenAIError:
            pass  # the demo's injected errors: a real app would handle them
        calls += 1
        time.sleep(rng.expovariate(rate))
    client.close()
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spendscope.demo.traffic")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--service", choices=sorted(SERVICES), required=True)
    parser.add_argument("--duration", type=float, default=0, help="seconds; 0 runs until stopped")
    parser.add_argument("--rate", type=float, default=4.0, help="calls per second (Poisson)")
    parser.add_argument("--uninstrumented", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    calls = run(
        base_url=args.base_url,
        api_key=args.api_key,
        service=SERVICES[args.service],
        duration=args.duration,
        rate=args.rate,
        instrumented=not args.uninstrumented,
        seed=args.seed,
        should_stop=lambda: stopping,
    )
    print(f"traffic {args.service}: {calls} calls", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
