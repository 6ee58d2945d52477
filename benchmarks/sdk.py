"""SDK overhead per call: uninstrumented vs spendscope vs the official OpenTelemetry instrumentation.

Same process, same fake OpenAI (a subprocess on loopback), same export pipeline (BatchSpanProcessor +
the real OTLP/HTTP exporter to a sink process), blocks toggled in ABBA order so drift cancels out.
Reports the median added latency per call and its ratio to the official instrumentation's, for
non-streaming calls and 200-chunk streams, the derived cost per stream chunk, and memory over many calls.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.sdk_setup import calls, processes


def _provider(endpoint: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, compression=Compression.Gzip), schedule_delay_millis=1000
        )
    )
    return provider


class _Tool:
    def __init__(self, name: str, on: Callable[[], None], off: Callable[[], None]) -> None:
        self.name, self.on, self.off = name, on, off


def _tools(provider: Any, sink: str) -> list[_Tool]:
    import spendscope

    tools = [_Tool("none", lambda: None, lambda: None)]
    handle: dict[str, Any] = {}

    def default_on() -> None:
        # spendscope's own pipeline, as `spendscope.instrument()` builds it: direct span emission
        # and its fast OTLP encoder, exporting to the same sink as the others.
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sink
        handle["h"] = spendscope.instrument(service_name="bench")

    tools.append(_Tool("spendscope", default_on, lambda: handle["h"].uninstrument()))  # noqa: PLW0108
    tools.append(
        _Tool(
            "spendscope*",  # through a user-supplied SDK provider and the stock OTLP exporter
            lambda: handle.__setitem__("p", spendscope.instrument(tracer_provider=provider)),
            lambda: handle["p"].uninstrument(),  # noqa: PLW0108
        )
    )
    try:
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        official = OpenAIInstrumentor()
        tools.append(
            _Tool(
                "official",
                lambda: official.instrument(tracer_provider=provider),
                official.uninstrument,
            )
        )
    except ImportError as exc:
        print(f"  (official instrumentation not installed: {exc})")
    return tools


def _time_calls(call: Callable[[], None], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def _measure(tools: list[_Tool], call: Callable[[], None], blocks: int, per_block: int) -> dict[str, float]:
    """Median µs per call for each tool, from ABBA-ordered blocks."""
    samples: dict[str, list[float]] = {t.name: [] for t in tools}
    for tool in tools:  # warm-up in each state
        tool.on()
        _time_calls(call, max(20, per_block // 5))
        tool.off()
    order = tools + tools[::-1]
    for _ in range(blocks):
        for tool in order:
            tool.on()
            gc.collect()
            samples[tool.name].extend(_time_calls(call, per_block))
            tool.off()
    return {name: statistics.median(values) / 1000 for name, values in samples.items()}


def _chunk_cost(chunks: int) -> tuple[float, float]:
    """µs per chunk of reading a stream plainly and through spendscope's tee (span included)."""
    import httpx2
    from opentelemetry.sdk.trace import TracerProvider

    from spendscope.instrument.call import Call, Recorder
    from spendscope.instrument.parsing import RequestInfo
    from spendscope.instrument.routes import classify
    from spendscope.instrument.streams import tee_classes

    sync_tee, _ = tee_classes(httpx2.SyncByteStream, httpx2.AsyncByteStream)
    body = (
        b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,'
        b'"model":"gpt-4o-mini-2024-07-18",'
        b'"service_tier":"default","choices":[{"index":0,"delta":{"content":"word"},"finish_reason":null}],'
        b'"usage":null,"obfuscation":"abc"}\n\n'
    )
    stream = [body] * chunks
    route = classify("POST", "/v1/chat/completions")
    assert route is not None
    recorder = Recorder(TracerProvider().get_tracer("bench"), False)
    info = RequestInfo("gpt-4o-mini", True, None, None, None, None)

    class Inner:
        def __iter__(self) -> Iterator[bytes]:
            return iter(stream)

        def close(self) -> None:
            pass

    def plain() -> None:
        for _ in Inner():
            pass

    def teed() -> None:
        call = Call(recorder, route, info, host="h", port=1, attempt=0, attribution=None, context=None)
        call.response(200, [(b"content-type", b"text/event-stream")])
        call.begin_stream()
        tee = sync_tee(Inner(), call)
        for _ in tee:
            pass
        tee.close()

    results = []
    for fn in (plain, teed):
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(100):
                fn()
            best = min(best, (time.perf_counter() - start) / 100 / chunks * 1e6)
        results.append(best)
    return results[0], results[1]


def _rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.sdk")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--per-block", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--memory-calls", type=int, default=100_000)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under callgrind instead (benchmarks/sdk_instructions.py; its own options)",
    )
    args, _ = parser.parse_known_args(argv)
    if args.instructions:
        from benchmarks import sdk_instructions

        sdk_instructions.main([a for a in (argv or []) if a != "--instructions"])
        return
    if args.quick:
        args.blocks, args.per_block, args.memory_calls = 1, 50, 2_000
    import openai

    import spendscope

    with processes() as (base_url, api_key, sink):
        provider = _provider(sink)
        client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        tools = _tools(provider, sink)

        plain, stream = calls(client, args.chunks)

        print(f"  openai {openai.__version__}; {args.blocks} ABBA blocks x {args.per_block} calls per tool")
        print("  spendscope = its default pipeline; spendscope* = through the same SDK provider as official")
        results = {}
        for label, call, per_block in (
            ("non-streaming", plain, args.per_block),
            (f"streaming ({args.chunks} chunks)", stream, max(10, args.per_block // 8)),
        ):
            medians = _measure(tools, call, args.blocks, per_block)
            base = medians["none"]
            added = {name: value - base for name, value in medians.items() if name != "none"}
            results[label] = added
            print(f"  {label}: baseline median {base:.1f} µs/call")
            for name, delta in added.items():
                line = f"    {name:<11} +{delta:7.1f} µs/call  ({medians[name] / base:.3f}x baseline)"
                if "official" in added and name != "official" and added["official"] > 0:
                    line += f"  = {delta / added['official']:.2f}x the official instrumentation's added time"
                print(line)
        non_stream = results["non-streaming"].get("spendscope", 0.0)
        streamed = results[f"streaming ({args.chunks} chunks)"].get("spendscope", 0.0)
        plain_chunk, teed_chunk = _chunk_cost(args.chunks)
        print(
            f"  stream tee, in isolation: {teed_chunk - plain_chunk:.2f} µs per chunk added "
            f"({args.chunks}-chunk streams, end-of-stream parsing and the span included)"
        )
        per_chunk = (streamed - non_stream) / args.chunks
        print(
            f"  spendscope per stream chunk ((stream added - non-stream added) / chunks): {per_chunk:.2f} µs"
        )

        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sink
        handle = spendscope.instrument(service_name="bench-memory")
        try:
            checkpoints = {}
            for i in range(args.memory_calls):
                plain()
                if i + 1 in (args.memory_calls // 10, args.memory_calls):
                    gc.collect()
                    checkpoints[i + 1] = _rss_kib()
            first, last = sorted(checkpoints)
            growth = (checkpoints[last] - checkpoints[first]) / 1024
            print(
                f"  memory: RSS {checkpoints[first] / 1024:.1f} MiB after {first} calls, "
                f"{checkpoints[last] / 1024:.1f} MiB after {last} (growth {growth:.1f} MiB)"
            )
        finally:
            handle.uninstrument()
            provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
