"""``spendscope alerts test RULE`` and ``spendscope alerts list``: ask the running collector."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["register"]


def _default_api() -> str:
    return os.environ.get("SPENDSCOPE_API", "http://127.0.0.1:4318")


def _request(api: str, method: str, path: str, timeout: float = 30.0) -> Any:
    req = urllib.request.Request(
        f"{api.rstrip('/')}{path}", method=method, headers={"Accept": "application/json"}
    )
    token = os.environ.get("SPENDSCOPE_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _call(args: argparse.Namespace, method: str, path: str) -> Any | None:
    try:
        return _request(args.api, method, path)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", "")
        except (ValueError, AttributeError):
            detail = ""
        print(f"spendscope alerts: the collector answered {exc.code}: {detail}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"spendscope alerts: cannot reach the collector at {args.api}: {exc}", file=sys.stderr)
    return None


def _cmd_test(args: argparse.Namespace) -> int:
    doc = _call(args, "POST", f"/api/v1/alerts/{urllib.parse.quote(args.rule, safe='')}/test")
    if doc is None:
        return 1
    print(f"test notification for {args.rule} queued to: {', '.join(doc.get('channels', []))}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    doc = _call(args, "GET", f"/api/v1/alerts?state={urllib.parse.quote(args.state)}")
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
    t.add_argument("--api", default=_default_api(), help="collector URL (default SPENDSCOPE_API or :4318)")
    t.set_defaults(func=_cmd_test)
    ls = sub.add_parser("list", help="alerts that are firing (or resolved, or all)")
    ls.add_argument("--state", choices=("firing", "resolved", "all"), default="firing")
    ls.add_argument("--json", action="store_true", help="print the API's JSON")
    ls.add_argument("--api", default=_default_api(), help="collector URL (default SPENDSCOPE_API or :4318)")
    ls.set_defaults(func=_cmd_list)
