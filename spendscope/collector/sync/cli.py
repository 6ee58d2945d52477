"""``spendscope sync``: ask the running collector to sync the Usage and Costs APIs now.

Through :mod:`spendscope.client` (standard library only), so it works from any install; the collector
does the work (it owns the database and the admin key).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spendscope.client import ApiError, add_api_option, client_from_env

__all__ = ["register"]


def _cmd_sync(args: argparse.Namespace) -> int:
    try:
        doc = client_from_env(api=args.api).sync()
    except ApiError as err:
        # A failed sync answers with what it did and what failed: --json shows that answer too.
        if args.json and err.status is not None:
            print(json.dumps(err.body or {"ok": False, "error": err.message}, indent=2))
        print(f"spendscope sync failed: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
    if doc.get("ok") is not True:
        print(f"spendscope sync failed: {doc.get('error') or 'the answer does not say ok'}", file=sys.stderr)
        return 1
    if not args.json:
        print(
            f"sync ok: {doc.get('window_start')} .. {doc.get('window_end')}; "
            f"{doc.get('pages', 0)} pages, {doc.get('rows_read', 0)} rows read, "
            f"{doc.get('rows_inserted', 0)} inserted, {doc.get('rows_updated', 0)} updated, "
            f"{doc.get('rows_deleted', 0)} deleted, {doc.get('retries', 0)} retries "
            f"in {doc.get('duration_s', 0)} s"
        )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sync", help="ask the running collector to sync OpenAI Usage/Costs now")
    add_api_option(p)
    p.add_argument("--json", action="store_true", help="print the collector's JSON answer")
    p.set_defaults(func=_cmd_sync)
