"""``spendscope alerts test RULE`` and ``spendscope alerts list``: ask the running collector."""

from __future__ import annotations

import argparse
import json
from typing import Any

from spendscope.client import add_api_option, ask

__all__ = ["register"]


def _cmd_test(args: argparse.Namespace) -> int:
    doc = ask(args.api, "alerts", lambda c: c.test_alert(args.rule))
    if doc is None:
        return 1
    print(f"test notification for {args.rule} queued to: {', '.join(doc.get('channels', []))}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    doc = ask(args.api, "alerts", lambda c: c.alerts(args.state))
    if doc is None:
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    rows = doc.get("rows", [])
    if not rows:
        print(f"no {args.state} alerts")
    for r in rows:
        scope = f" [{r['scope_key']}]" if r.get("scope_key") else ""
        d = r.get("deliveries", {})
        print(
            f"{r['state']:<9} {r['severity']:<8} {r['rule']}{scope} since {r['started_at']}: {r['message']}"
            f" (delivered {d.get('delivered', 0)}, pending {d.get('pending', 0)},"
            f" failed {d.get('failed', 0)})"
        )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("alerts", help="alert rules of the running collector")
    sub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    t = sub.add_parser("test", help="send a test notification through a rule's channels")
    t.add_argument("rule", help="rule name from the config file")
    add_api_option(t)
    t.set_defaults(func=_cmd_test)
    ls = sub.add_parser("list", help="alerts that are firing (or resolved, or all)")
    ls.add_argument("--state", choices=("firing", "resolved", "all"), default="firing")
    ls.add_argument("--json", action="store_true", help="print the API's JSON")
    add_api_option(ls)
    ls.set_defaults(func=_cmd_list)
