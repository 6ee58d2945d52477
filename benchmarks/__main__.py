"""Run every benchmark: ``python -m benchmarks [--quick] [--only sdk,ingest,query,dashboard,lake]``."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = ("sdk", "ingest", "query", "dashboard", "lake")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma list of " + ", ".join(BENCHMARKS))
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run, not figures to report"
    )
    args, rest = parser.parse_known_args(argv)
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ImportError as exc:
            print(f"== {name}: not available ({exc})", flush=True)
            continue
        print(f"== {name}", flush=True)
        module.main([*rest, *(["--quick"] if args.quick else [])])


if __name__ == "__main__":
    main(sys.argv[1:])
