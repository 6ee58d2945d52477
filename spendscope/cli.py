"""The ``spendscope`` command line (placeholder until the subcommands land)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    print("spendscope: no subcommands yet", file=sys.stderr)
    return 2
