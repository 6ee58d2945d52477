"""``spendscope sync``: ask the running collector to sync the Usage and Costs APIs now.

Standard library only, so it works from any install; the collector does the work (it owns the
database and the admin key).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

__all__ = ["register", "request_sync"]

# A backfill of 30 days of every endpoint can take a while on a large organization.
_TIMEOUT_S = 900.0


def _default_api() -> str:
    return os.environ.get("SPENDSCOPE_API", "http://127.0.0.1:4318").rstrip("/")


def request_sync(api: str, timeout: float = _TIMEOUT_S) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/sync; returns (HTTP status, JSON answer). Raises OSError when unreachable."""
    req = urllib.request.Request(f"{api.rstrip('/')}/api/v1/sync", data=b"", method="POST")
    req.add_header("Accept", "application/json")
    token = os.environ.get("SPENDSCOPE_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, _json(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read())


def _json(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return {"ok": False, "error": raw[:300].decode("utf-8", errors="replace")}
    return doc if isinstance(doc, dict) else {"ok": False, "error": f"unexpected answer: {doc!r}"}


def _cmd_sync(args: argparse.Namespace) -> int:
    try:
        status, doc = request_sync(args.api)
    except (urllib.error.URLError, OSError) as exc:
        print(f"spendscope sync: cannot reach the collector at {args.api}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
    if status == 200 and doc.get("ok") is True:
        if not args.json:
            print(
                f"sync ok: {doc.get('window_start')} .. {doc.get('window_end')}; "
                f"{doc.get('pages', 0)} pages, {doc.get('rows_read', 0)} rows read, "
                f"{doc.get('rows_inserted', 0)} inserted, {doc.get('rows_updated', 0)} updated, "
                f"{doc.get('rows_deleted', 0)} deleted, {doc.get('retries', 0)} retries "
                f"in {doc.get('duration_s', 0)} s"
            )
        return 0
    print(f"spendscope sync failed ({status}): {doc.get('error') or 'unknown error'}", file=sys.stderr)
    return 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sync", help="ask the running collector to sync OpenAI Usage/Costs now")
    p.add_argument("--api", default=_default_api(), help="collector URL (default SPENDSCOPE_API or :4318)")
    p.add_argument("--json", action="store_true", help="print the collector's JSON answer")
    p.set_defaults(func=_cmd_sync)
