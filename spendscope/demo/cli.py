"""``spendscope demo``: register the subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole system on a bundled fake OpenAI with generated traffic",
        description="Starts a fake OpenAI, the collector, traffic from four services, an alert sink and "
        "the dashboard. Ctrl-C (or SIGTERM) stops everything.",
    )
    parser.add_argument(
        "--duration", type=float, default=0, help="stop after this many seconds (default: run until Ctrl-C)"
    )
    parser.add_argument(
        "--port",
        "--collector-port",
        dest="collector_port",
        type=int,
        default=4318,
        help="collector port (default 4318)",
    )
    parser.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port (default 8501)")
    parser.add_argument(
        "--no-dashboard", action="store_true", help="do not start the dashboard (headless runs)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(".spendscope-demo"),
        help="working directory for the database, config and logs",
    )
    parser.add_argument("--rate", type=float, default=4.0, help="calls per second per service (default 4)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from spendscope.demo.runner import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            duration=args.duration,
            collector_port=args.collector_port,
            dashboard_port=args.dashboard_port,
            dashboard=not args.no_dashboard,
            workdir=args.dir,
            rate=args.rate,
        )
    )
