"""``spendscope collector`` and ``spendscope spend``.

``spend`` reads the running collector's API through :mod:`spendscope.client` (standard library only),
so it works from the base install; ``collector`` needs the server extra and says so when it is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spendscope.client import add_api_option, ask
from spendscope.isotime import parse_since

__all__ = ["format_table", "register"]

_SERVER_MODULES = ("duckdb", "pyarrow", "starlette", "uvicorn", "apscheduler", "opentelemetry.proto")


def _missing_server_extra() -> str | None:
    import importlib.util

    for name in _SERVER_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ModuleNotFoundError:
            return name
    return None


def _cmd_collector(args: argparse.Namespace) -> int:
    missing = _missing_server_extra()
    if missing:
        print(
            f"spendscope collector needs the server extra ({missing} is not installed): "
            "pip install 'spendscope[server]'",
            file=sys.stderr,
        )
        return 2
    from spendscope.collector.config import ConfigError, load_config
    from spendscope.collector.server import run

    try:
        config = load_config(args.config, host=args.host, port=args.port, db=args.db)
    except ConfigError as exc:
        for line in str(exc).splitlines():  # every problem of the file at once, one a line
            print(f"spendscope collector: {line}", file=sys.stderr)
        return 2
    try:
        return run(config)
    except ConfigError as exc:  # found at start: a lake's data path or replica name
        print(f"spendscope collector: {exc}", file=sys.stderr)
        return 2


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _cmd_spend(args: argparse.Namespace) -> int:
    doc = ask(args.api, "spend", lambda c: c.spend(args.since, args.until, args.by))
    if doc is None:
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    keys = list(doc.get("group_by", []))
    columns = [
        *keys,
        "calls",
        "errors",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "cost_usd",
        "unpriced_calls",
    ]
    rows = list(doc.get("rows", []))
    totals = dict(doc.get("totals", {}))
    if keys:
        totals[keys[0]] = "TOTAL"
    print(format_table([*rows, totals], columns))
    print(f"\n{doc.get('start')} .. {doc.get('end')} (cost in USD; unpriced calls have no cost)")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("collector", help="run the collector (OTLP receiver, DuckDB, query API)")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 4318)")
    p.add_argument("--db", default=None, help="DuckDB file (default ./spendscope.duckdb, or SPENDSCOPE_DB)")
    p.add_argument("--config", default=None, help="TOML config file (or SPENDSCOPE_CONFIG)")
    p.set_defaults(func=_cmd_collector)

    s = subparsers.add_parser("spend", help="spend, calls and tokens from the running collector")
    s.add_argument("--by", default="model", help="group keys, comma separated (e.g. model,day)")
    s.add_argument("--since", type=parse_since, default=parse_since("7d"), help="7d, 24h or ISO (default 7d)")
    s.add_argument("--until", type=parse_since, default=None, help="end (exclusive), same forms as --since")
    add_api_option(s)
    s.add_argument("--json", action="store_true", help="print the API's JSON answer")
    s.set_defaults(func=_cmd_spend)
