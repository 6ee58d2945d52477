"""SDK cost per call counted in CPU instructions (callgrind), beside the wall-clock ``benchmarks.sdk``.

Wall-clock medians on a shared 2-core machine swing by as much as the gap being measured, and they
miss the export thread's work. Instruction counts repeat within about 1% here, and every thread of
the process is counted. ``python -m benchmarks.sdk --instructions`` starts the fake OpenAI and an
OTLP sink natively, then runs this module's worker under
``valgrind --tool=callgrind --dump-before=math_lcm``: the worker calls ``math.lcm`` (which nothing
else in the process calls) between measured regions, so each callgrind dump holds exactly one region.

Per tool (spendscope's default pipeline; spendscope through a user's SDK provider; the official
OpenTelemetry OpenAI instrumentation through that same provider), one round measures, in this order:

    none x n | on | T x n | flush n | T x 1 | flush 1 | T x n | flush n | off | none x n

so the hook is paired with plain calls in the same process (ABBA: drift cancels), and:

* hook = instrumented minus plain region, per call (span handed to the batch queue, no export);
* request(1) = a flush carrying one span: what a one-call-per-export-interval app pays per call;
* export per span = (request(n) - request(1)) / (n - 1): the marginal encode-and-send cost;
* a 512-span request (the batch processor's default batch) measured once per tool.

"per call" is hook + request(512) / 512: what a busy service pays. The issue-19 pairing
(hook + one single-span request per call) is printed too. The whole measurement runs twice in the
same process and the table says how far the two rounds differ.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from benchmarks.sdk_setup import MESSAGES, calls, processes

__all__ = ["main", "run"]

MARKER = "math_lcm"  # the C function whose entry makes callgrind dump (math.lcm)
TOOLS = ("spendscope", "spendscope*", "official")
# The batch processor must never export on its own while regions are measured: no timer, and a
# batch size above anything queued, so every export happens in an explicit flush region.
_CHILD_ENV = {
    "PYTHONHASHSEED": "0",
    "OTEL_BSP_SCHEDULE_DELAY": "86400000",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1024",
    "OTEL_BSP_MAX_QUEUE_SIZE": "2048",
}


# --- the worker, under callgrind --------------------------------------------------------------------
class _Regions:
    """Names the callgrind dumps in order: each measured region is bracketed by two markers.

    The dump before a region (set-up, toggling, bookkeeping) is named "-" and not reported.
    The cyclic garbage collector would otherwise run at allocation counts that fall anywhere in
    a region (it moved a 200-chunk stream by +-0.2M instructions): each region starts with empty
    young generations, runs with automatic collection off, and ends with the young-generation
    collection of what it allocated, counted in.
    """

    def __init__(self) -> None:
        self.names: list[str] = []

    def measure(self, name: str, work: Callable[[], Any]) -> None:
        gc.collect()
        gc.disable()
        try:
            math.lcm(1, 1)  # closes the unreported stretch since the last region
            work()
            gc.collect(1)
            math.lcm(1, 1)  # closes this region
        finally:
            gc.enable()
        self.names += ["-", name]


class _Tool:
    def __init__(self, name: str, on: Callable[[], None], off: Callable[[], None], flush: Callable[[], Any]):
        self.name, self.on, self.off, self.flush = name, on, off, flush


def _worker_tools(sink: str) -> dict[str, _Tool]:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import spendscope

    # The user's provider, as an app would build it: batch processor and the stock OTLP exporter.
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=sink, compression=Compression.Gzip))
    )
    handles: dict[str, Any] = {}

    def own_on() -> None:
        handles["own"] = spendscope.instrument(service_name="bench")

    def user_on() -> None:
        handles["user"] = spendscope.instrument(tracer_provider=provider)

    official = OpenAIInstrumentor()
    return {
        "spendscope": _Tool("spendscope", own_on, lambda: _off(handles, "own"), lambda: _flush(handles)),
        "spendscope*": _Tool("spendscope*", user_on, lambda: _off(handles, "user"), provider.force_flush),
        "official": _Tool(
            "official",
            lambda: official.instrument(tracer_provider=provider),
            official.uninstrument,
            provider.force_flush,
        ),
    }


def _off(handles: dict[str, Any], name: str) -> None:
    handles[name].uninstrument()


def _flush(handles: dict[str, Any]) -> None:
    handles["own"].force_flush()


def _worker(args: argparse.Namespace) -> None:
    if args.breakdown:
        _breakdown_worker(args)
        return
    import openai

    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = args.sink
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)

    plain, stream = calls(client, args.chunks)
    long_stream = calls(client, args.long_chunks)[1]

    def times(call: Callable[[], None], n: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(n):
                call()

        return run

    tools = _worker_tools(args.sink)
    workloads = [
        ("plain", plain, args.calls),
        ("stream", stream, args.streams),
        ("long", long_stream, args.long_streams),
    ]
    for tool in tools.values():  # every code path run once before anything is counted
        tool.on()
        for _, call, _ in workloads:
            call()
        tool.flush()
        tool.off()
    for _, call, _ in workloads:
        call()
    gc.collect()
    gc.freeze()  # start-up objects leave the collector's generations: collections cost what regions made
    regions = _Regions()
    for round_ in range(args.repeat):
        for name in args.tools:
            tool = tools[name]
            for label, call, n in workloads:
                key = f"{round_}/{name}/{label}"
                regions.measure(f"{key}/none-a", times(call, n))
                tool.on()
                call()
                tool.flush()
                regions.measure(f"{key}/hook-a", times(call, n))
                regions.measure(f"{key}/flush-n", tool.flush)
                regions.measure(f"{key}/hook-1", call)
                regions.measure(f"{key}/flush-1", tool.flush)
                regions.measure(f"{key}/hook-b", times(call, n))
                regions.measure(f"{key}/flush-n2", tool.flush)
                tool.off()
                regions.measure(f"{key}/none-b", times(call, n))
            if args.batch and round_ == 0:
                tool.on()
                tool.flush()
                times(plain, args.batch)()
                regions.measure(f"{name}/flush-batch", tool.flush)
                tool.off()
    with open(args.names, "w") as handle:
        json.dump(regions.names, handle)


def _breakdown_worker(args: argparse.Namespace) -> None:
    """Each piece of the hook and of the export alone, on a real request, response and spans.

    Reads spendscope's internals (the patcher, the recorder, the pipeline): it is a profile of
    this version, not a contract.
    """
    import openai
    from opentelemetry import context as otel_context

    import spendscope
    from spendscope.instrument import attribution, routes
    from spendscope.instrument.call import Call, Recorder
    from spendscope.instrument.otlp import encode_records
    from spendscope.instrument.parsing import parse_json, parse_request, response_attributes
    from spendscope.instrument.sse import summarize_stream

    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = args.sink
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)
    handle = spendscope.instrument(service_name="bench")
    response = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ).http_response
    request, body = response.request, response.content
    patcher = handle._patcher
    recorder: Any = patcher.recorder
    pipe = recorder._pipe
    records: list[Any] = []
    pipe.add = records.append  # the spans of the next calls, kept to be encoded below
    for _ in range(16):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    del pipe.add
    route = routes.classify("POST", request.url.path)
    info = parse_request(request.content)

    class Discard(Recorder):
        def emit(self, *_: Any) -> None:
            pass

    discard = Discard(recorder.tracer, False)

    def call(sink: Recorder = discard) -> Any:
        return Call(sink, route, info, host="127.0.0.1", port=1, attempt=0, attribution=None, context=None)

    def responded() -> Any:
        made = call()
        made.response(response.status_code, response.headers.raw)
        return made

    done = responded()
    done.body(body)
    attrs = done.attrs
    data = encode_records(records, pipe._envelope)
    chunk = (
        b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
        b'"choices":[{"index":0,"delta":{"content":"word"},"finish_reason":null}],"usage":null}\n\n'
    )
    tail = (
        chunk * 199
        + chunk.replace(b'"finish_reason":null', b'"finish_reason":"stop"')
        + (
            b'data: {"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":200}}'
            b"\n\ndata: [DONE]\n\n"
        )
    )
    url = request.url
    spans = len(records)

    def headers() -> None:
        call().response(response.status_code, response.headers.raw)

    def record() -> None:
        recorder.emit("chat m", None, dict(attrs), 1, 2, None)

    # (what, repeats, operations per repeat, the work)
    pieces: list[tuple[str, int, int, Callable[[], Any]]] = [
        (
            "hook: route, host and port",
            32,
            1,
            lambda: (routes.classify("POST", url.path), url.host, url.port),
        ),
        ("hook: request body (JSON)", 32, 1, lambda: parse_request(request.content)),
        ("hook: retry-count header", 32, 1, lambda: request.headers.get("x-stainless-retry-count")),
        ("hook: attribution and context", 32, 1, lambda: (attribution.current(), otel_context.get_current())),
        ("hook: Call()", 32, 1, call),
        ("hook: request side in all (the four above + Call)", 32, 1, lambda: patcher.begin(request)),
        ("hook: Call() + response headers", 32, 1, headers),
        ("hook: response body (JSON)", 32, 1, lambda: response_attributes(parse_json(body), {})),
        ("hook: the record (ids, sampling, queue)", 32, 1, record),
        ("export: encode, per span", 4, spans, lambda: encode_records(records, pipe._envelope)),
        ("export: compress, per span", 4, spans, lambda: pipe._compress(data)),
        (f"export: one HTTP request ({spans} spans)", 4, 1, lambda: pipe._send(pipe._compress(data))),
        (
            "stream: end-of-stream summary (200 chunks)",
            8,
            1,
            lambda: summarize_stream(tail, chunk, "chat", {}),
        ),
    ]
    regions = _Regions()
    for name, repeats, per, piece in pieces:
        piece()  # warm (caches, specialization) before counting

        def repeat(piece: Callable[[], Any] = piece, repeats: int = repeats) -> None:
            for _ in range(repeats):
                piece()

        regions.measure(f"{name}|{repeats * per}", repeat)
    handle.force_flush()
    handle.uninstrument()
    with open(args.names, "w") as handle_:
        json.dump(regions.names, handle_)


# --- the parent: processes, callgrind, the table ----------------------------------------------------
def _dumps(directory: str) -> list[int]:
    """Instruction totals of the numbered dumps, in order (the last stretch, to exit, is not numbered)."""
    totals: dict[int, int] = {}
    for path in glob.glob(os.path.join(directory, "cg.*.*")):
        number = int(path.rsplit(".", 1)[1])
        with open(path) as handle:
            for line in handle:
                if line.startswith(("totals:", "summary:")):
                    totals[number] = int(line.split()[1])
                    break
    return [totals[i] for i in sorted(totals)]


def _figures(costs: dict[str, int], key: str, n: int) -> dict[str, float]:
    def get(name: str) -> int:
        return costs[f"{key}/{name}"]

    hook = (get("hook-a") + get("hook-b") - get("none-a") - get("none-b")) / (2 * n)
    flush_n = (get("flush-n") + get("flush-n2")) / 2
    flush_1 = float(get("flush-1"))
    per_span = (flush_n - flush_1) / (n - 1) if n > 1 else float("nan")
    return {
        "hook": hook,
        "request_1": flush_1,
        "export_per_span": per_span,
        "plain": (get("none-a") + get("none-b")) / (2 * n),
    }


def _k(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value / 1e6:.2f}M" if abs(value) >= 1e6 else f"{value / 1e3:.1f}k"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the worker under callgrind against native fake/sink processes; print and return the figures."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("benchmarks.sdk --instructions needs valgrind (apt-get install valgrind)")
    with (
        tempfile.TemporaryDirectory(prefix="spendscope-callgrind-") as directory,
        processes() as (
            base_url,
            api_key,
            sink,
        ),
    ):
        names = os.path.join(directory, "names.json")
        command = [
            valgrind,
            "--tool=callgrind",
            f"--dump-before={MARKER}",
            "--dump-instr=no",
            "--dump-line=no",
            f"--callgrind-out-file={directory}/cg.%p",
            sys.executable,
            "-m",
            "benchmarks.sdk_instructions",
            "--worker",
            "--base-url",
            base_url,
            "--api-key",
            api_key,
            "--sink",
            sink,
            "--names",
            names,
            *_forwarded(args),
        ]
        env = {**os.environ, **_CHILD_ENV}
        subprocess.run(command, check=True, env=env, stderr=subprocess.DEVNULL)
        with open(names) as handle:
            labels: list[str] = json.load(handle)
        totals = _dumps(directory)
        if len(totals) < len(labels):
            raise SystemExit(f"callgrind wrote {len(totals)} region dumps for {len(labels)} regions")
        costs = {label: total for label, total in zip(labels, totals, strict=False) if label != "-"}
        if args.keep:
            kept = os.path.abspath(args.keep)
            os.makedirs(kept, exist_ok=True)
            for path in glob.glob(os.path.join(directory, "*")):
                shutil.copy(path, kept)
            print(f"  callgrind dumps and region names kept in {kept}")
    if args.breakdown:
        print("  instructions per operation (callgrind), each piece alone:")
        for label, total in costs.items():
            name, count = label.rsplit("|", 1)
            print(f"    {name:<52}{_k(total / int(count)):>9}")
        return {
            "breakdown": {
                label.rsplit("|", 1)[0]: total / int(label.rsplit("|", 1)[1])
                for label, total in costs.items()
            }
        }
    return _report(args, costs)


def _forwarded(args: argparse.Namespace) -> list[str]:
    return ["--breakdown"] * args.breakdown + [
        "--calls", str(args.calls), "--streams", str(args.streams), "--chunks", str(args.chunks),
        "--long-streams", str(args.long_streams), "--long-chunks", str(args.long_chunks),
        "--repeat", str(args.repeat), "--batch", str(args.batch), "--tools", ",".join(args.tools),
    ]  # fmt: skip


def _report(args: argparse.Namespace, costs: dict[str, int]) -> dict[str, Any]:
    sizes = {"plain": args.calls, "stream": args.streams, "long": args.long_streams}
    rounds: list[dict[str, dict[str, dict[str, float]]]] = []
    for round_ in range(args.repeat):
        rounds.append(
            {
                tool: {label: _figures(costs, f"{round_}/{tool}/{label}", n) for label, n in sizes.items()}
                for tool in args.tools
            }
        )
    batch = {tool: costs.get(f"{tool}/flush-batch") for tool in args.tools}
    out: dict[str, Any] = {"rounds": rounds, "batch": batch, "batch_size": args.batch}
    print(
        f"  instructions (callgrind), {args.calls} plain calls, {args.streams} x {args.chunks}-chunk and "
        f"{args.long_streams} x {args.long_chunks}-chunk streams per region; {args.repeat} rounds"
    )
    plain = rounds[0][args.tools[0]]["plain"]["plain"]
    print(f"  uninstrumented call: {_k(plain)} instructions (openai SDK + httpx + loopback HTTP)")
    header = f"  {'tool':<12}{'hook':>9}{'req(1)':>9}{'exp/span':>10}{'req(' + str(args.batch) + ')':>10}"
    print(header + f"{'per call':>10}{'+req(1)':>10}{'stream':>9}{'/chunk':>8}{'long/chunk':>11}")
    summary: dict[str, dict[str, float]] = {}
    for round_, figures in enumerate(rounds):
        for tool in args.tools:
            f = figures[tool]
            request_batch = batch[tool] or float("nan")
            per_call = f["plain"]["hook"] + request_batch / max(args.batch, 1)
            single = f["plain"]["hook"] + f["plain"]["request_1"]
            stream_call = f["stream"]["hook"] + request_batch / max(args.batch, 1)
            per_chunk = (f["stream"]["hook"] - f["plain"]["hook"]) / args.chunks
            long_chunk = (f["long"]["hook"] - f["stream"]["hook"]) / (args.long_chunks - args.chunks)
            row = {
                "hook": f["plain"]["hook"],
                "request_1": f["plain"]["request_1"],
                "export_per_span": f["plain"]["export_per_span"],
                "request_batch": request_batch,
                "per_call": per_call,
                "per_call_single_request": single,
                "stream": stream_call,
                "per_chunk": per_chunk,
                "long_per_chunk": long_chunk,
            }
            summary[f"{round_}/{tool}"] = row
            label = tool if round_ == 0 else tool + "'"
            print(
                f"  {label:<12}{_k(row['hook']):>9}{_k(row['request_1']):>9}"
                f"{_k(row['export_per_span']):>10}{_k(request_batch):>10}{_k(per_call):>10}"
                f"{_k(single):>10}{_k(stream_call):>9}{_k(per_chunk):>8}{_k(long_chunk):>11}"
            )
    out["summary"] = summary
    if "official" in args.tools:
        for tool in (t for t in args.tools if t != "official"):
            parts = []
            for measure, label in (
                ("per_call", "per call"),
                ("hook", "hook"),
                ("per_call_single_request", "with a 1-span request per call"),
                ("stream", f"per {args.chunks}-chunk stream"),
            ):
                ratios = [
                    summary[f"{r}/{tool}"][measure] / summary[f"{r}/official"][measure]
                    for r in range(args.repeat)
                ]
                parts.append(f"{label} {'/'.join(f'{x:.2f}' for x in ratios)}x")
            print(f"  {tool} vs official (round 1/round 2): " + ", ".join(parts))
    if args.repeat > 1:
        worst = 0.0
        for tool in args.tools:
            for measure in ("hook", "request_1", "stream"):
                a, b = summary[f"0/{tool}"][measure], summary[f"1/{tool}"][measure]
                worst = max(worst, abs(a - b) / max(abs(a), abs(b), 1.0))
        print(f"  repeat agreement: hook, request(1) and stream figures differ by at most {worst * 100:.1f}%")
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks.sdk --instructions")
    parser.add_argument("--calls", type=int, default=16, help="plain calls per region")
    parser.add_argument("--streams", type=int, default=4, help="streams per region")
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--long-streams", type=int, default=2, help="long streams per region")
    parser.add_argument("--long-chunks", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--batch", type=int, default=512, help="spans in the measured batch request (0: skip)"
    )
    parser.add_argument("--tools", type=lambda s: [t for t in s.split(",") if t], default=list(TOOLS))
    parser.add_argument("--keep", default=None, help="copy the callgrind dumps to this directory")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke run: one small round, no batch request")
    parser.add_argument(
        "--breakdown", action="store_true", help="instead: each piece of the hook and the export alone"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args, _ = _parser().parse_known_args(argv)
    if args.worker:
        _worker(args)
        return
    if args.quick:
        args.calls, args.streams, args.long_streams, args.repeat, args.batch = 4, 1, 1, 1, 0
    figures = run(args)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
