"""The fake's organization Usage and Costs API (stub until the sync work lands)."""

from __future__ import annotations

from collections.abc import Mapping

from spendscope.fake_openai.ledger import Ledger

__all__ = ["handle"]


def handle(
    method: str, path: str, query: str, headers: Mapping[str, str], ledger: Ledger, now: float
) -> tuple[int, dict[str, str], bytes]:
    """Answer one ``/v1/organization/...`` request: (status, headers, body)."""
    body = b'{"error":{"message":"not implemented","type":"invalid_request_error","param":null,"code":null}}'
    return 501, {"content-type": "application/json"}, body
