"""A stand-alone exporting app for crash and overload tests (run with ``python -m``).

It builds GenAI spans with the real OpenTelemetry SDK and exports them with the real
``OTLPSpanExporter`` (which retries, honouring Retry-After), one batch at a time. After each export
it appends the batch's span ids to ``--out`` with the result, fsynced, so the test knows exactly
which spans the collector acknowledged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult, SpanProcessor
from opentelemetry.trace import SpanKind


class _Collect(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--feature", default="exporter-app")
    p.add_argument("--timeout", type=float, default=40.0)
    p.add_argument("--pause", type=float, default=0.0)
    args = p.parse_args(argv)

    collect = _Collect()
    tp = TracerProvider(resource=Resource.create({"service.name": f"app-{os.getpid()}"}))
    tp.add_span_processor(collect)
    tracer = tp.get_tracer("exporter-app")
    exporter: SpanExporter = OTLPSpanExporter(endpoint=args.endpoint, timeout=args.timeout)
    failures = 0
    with open(args.out, "a", encoding="utf-8") as out:
        for b in range(args.batches):
            collect.spans.clear()
            for i in range(args.batch_size):
                with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
                    span.set_attributes(
                        {
                            "gen_ai.provider.name": "openai",
                            "gen_ai.operation.name": "chat",
                            "gen_ai.request.model": "gpt-4o-mini",
                            "gen_ai.usage.input_tokens": 100 + i,
                            "gen_ai.usage.output_tokens": 10,
                            "http.response.status_code": 200,
                            "spendscope.feature": args.feature,
                            "spendscope.user": f"batch-{b}",
                        }
                    )
            result = exporter.export(list(collect.spans))
            ok = result is SpanExportResult.SUCCESS
            failures += not ok
            ids = ",".join(
                f"{s.context.trace_id:032x}:{s.context.span_id:016x}" for s in collect.spans if s.context
            )
            out.write(f"{'ok' if ok else 'fail'} {ids}\n")
            out.flush()
            os.fsync(out.fileno())
            if args.pause:
                time.sleep(args.pause)
    exporter.shutdown()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
