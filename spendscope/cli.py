"""The ``spendscope`` command line: argparse with subcommands registered by an explicit module list.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` and keeps its heavy imports
inside the command functions, so ``spendscope --help`` stays fast and the base install (SDK only)
can still print help and explain which extra a server command needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES: list[str] = [
    "spendscope.collector.cli",
    "spendscope.pricing.cli",
    "spendscope.demo.cli",
    "spendscope.dashboard.cli",
    "spendscope.collector.sync.cli",
    "spendscope.collector.alerts.cli",
    "spendscope.collector.lake.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spendscope", description="Cost and reliability observability for the OpenAI API."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A component that is not there yet (or not installed) just adds no commands.
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
