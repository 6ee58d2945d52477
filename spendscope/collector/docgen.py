"""Reference tables generated from the declarations they describe, kept in the docs pages.

Each generated part of a page sits between markers that name its generator. ``python -m
spendscope.collector.docgen`` (run by ``make docs``) rewrites every part; ``--check`` only says
which page is stale, and a test fails when a committed page differs from what the declarations give.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from spendscope.collector import apidoc, configdoc, schemadoc

__all__ = ["PAGES", "main", "update_page"]

# page → (the name in its markers, the generator)
PAGES: dict[str, tuple[str, Callable[[], str]]] = {
    "docs/configuration.md": ("configuration", configdoc.reference),
    "docs/collector.md": ("calls columns", schemadoc.reference),
    "docs/api-reference.md": ("API reference", apidoc.reference),
}


def _markers(name: str) -> tuple[str, str]:
    begin = (
        f"<!-- BEGIN GENERATED {name} by `python -m spendscope.collector.docgen`: edit the declarations -->"
    )
    return begin, f"<!-- END GENERATED {name} -->"


def update_page(text: str, name: str, reference: Callable[[], str]) -> str:
    """``text`` with the part between ``name``'s markers replaced by ``reference()``."""
    begin, end = _markers(name)
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"the page needs the markers {begin!r} and {end!r}")
    return f"{head}{begin}\n\n{reference()}\n{end}{tail}"


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    base = root or Path.cwd()
    stale = False
    for page, (name, reference) in PAGES.items():
        path = base / page
        text = path.read_text(encoding="utf-8")
        new = update_page(text, name, reference)
        if new == text:
            continue
        stale = True
        if check:
            print(f"{page}: the generated {name} reference is stale; run `make docs`", file=sys.stderr)
        else:
            path.write_text(new, encoding="utf-8")
            print(f"{page}: {name} reference regenerated")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
