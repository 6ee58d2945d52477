"""``spendscope lake status [--json]`` and ``spendscope lake compact``, through the one API client.

Standard library only (via :mod:`spendscope.client`): they ask a running collector, any replica.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from spendscope.client import add_api_option, ask

__all__ = ["format_status", "register"]


def format_status(doc: dict[str, Any]) -> str:
    """The status object as a few lines for a person."""
    if doc.get("lake") is False:
        return "this collector has no lake: one collector, one DuckDB file (see the [lake] settings)"
    lines = [
        f"replica            {doc.get('replica')}{'  (leader)' if doc.get('leader') else ''}",
        f"leader             {doc.get('leader_replica') or '-'}",
        f"unshipped rows     {doc.get('unshipped_rows')}",
        f"last shipment      {doc.get('last_ship_at') or '-'}",
        f"files              {doc.get('files') if doc.get('files') is not None else '-'}",
        f"last compaction    {doc.get('last_compaction_at') or '-'}",
    ]
    if doc.get("error"):
        lines.append(f"error              {doc['error']}")
    replicas = doc.get("replicas") or []
    if replicas:
        lines.append("")
        width = max(len("replica"), *(len(str(r.get("replica"))) for r in replicas))
        lines.append(f"{'replica'.ljust(width)}  {'shipped rows':>12}  last shipment")
        for r in replicas:
            name, rows = str(r.get("replica")).ljust(width), r.get("shipped_rows", 0)
            lines.append(f"{name}  {rows:>12}  {r.get('last_ship_at') or '-'}")
    return "\n".join(lines)


def _cmd_status(args: argparse.Namespace) -> int:
    doc = ask(args.api, "lake status", lambda c: c.lake_status())
    if doc is None:
        return 1
    print(json.dumps(doc, indent=2) if args.json else format_status(doc))
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    doc = ask(args.api, "lake compact", lambda c: c.lake_compact())
    if doc is None:
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"compacted: {doc.get('files_before')} files -> {doc.get('files_after')} "
            f"in {doc.get('duration_s')} s"
        )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("lake", help="the shared lake of several collectors: status, compaction")
    sub = p.add_subparsers(dest="lake_command", metavar="COMMAND", required=True)
    s = sub.add_parser("status", help="this replica, the leader, shipping, replicas and files")
    add_api_option(s)
    s.add_argument("--json", action="store_true", help="print the API's JSON object")
    s.set_defaults(func=_cmd_status)
    c = sub.add_parser("compact", help="merge the lake's small files and remove old ones now")
    add_api_option(c)
    c.add_argument("--json", action="store_true", help="print the API's JSON answer")
    c.set_defaults(func=_cmd_compact)
