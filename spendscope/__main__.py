"""``python -m spendscope``: the same as the ``spendscope`` command."""

from __future__ import annotations

import sys

from spendscope.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
