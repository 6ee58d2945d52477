"""A small typed HTTP client for the collector's query API (``/api/v1/*``).

Every failure becomes :class:`ApiError` with a ``kind`` and a sentence a person can act on, so the
pages show a message instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "API_ENV",
    "DEFAULT_API",
    "TOKEN_ENV",
    "ApiClient",
    "ApiError",
    "client_from_env",
]

DEFAULT_API = "http://127.0.0.1:4318"
API_ENV = "SPENDSCOPE_API"
TOKEN_ENV = "SPENDSCOPE_TOKEN"
_MAX_BODY = 32 * 1024 * 1024  # a query answer larger than this is a bug, not data to render

Params = Mapping[str, str | int | None]


class ApiError(Exception):
    """A query failed. ``kind``: unreachable, unauthorized, not_found, bad_request, server, invalid."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class ApiClient:
    base_url: str = DEFAULT_API
    token: str | None = None
    timeout_s: float = 10.0

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """GET ``path`` (``/api/v1/...``) with the non-empty ``params``; the decoded JSON object."""
        url = self.base_url.rstrip("/") + path
        clean = {k: str(v) for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            resp = httpx.get(url, params=clean, headers=self._headers(), timeout=self.timeout_s)
        except httpx.TimeoutException:
            raise ApiError(
                "unreachable", f"The collector at {self.base_url} did not answer within {self.timeout_s:g} s."
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(
                "unreachable",
                f"Cannot reach the collector at {self.base_url} ({type(exc).__name__}). "
                "Start it with `spendscope collector` or point the dashboard at it with --api.",
            ) from None
        if len(resp.content) > _MAX_BODY:
            raise ApiError("invalid", f"{path} answered with more than {_MAX_BODY} bytes.", resp.status_code)
        if resp.status_code in (401, 403):
            hint = (
                "the token in SPENDSCOPE_TOKEN was refused"
                if self.token
                else "it requires a token: set SPENDSCOPE_TOKEN to the collector's token"
            )
            raise ApiError("unauthorized", f"The collector refused the request: {hint}.", resp.status_code)
        if resp.status_code == 404:
            raise ApiError(
                "not_found", f"This collector has no {path} endpoint (it may be an older version).", 404
            )
        body = _json(resp)
        if resp.status_code >= 400:
            detail = body.get("error") if isinstance(body, dict) else None
            kind = "bad_request" if resp.status_code < 500 else "server"
            raise ApiError(
                kind, f"{path} answered {resp.status_code}: {detail or resp.reason_phrase}", resp.status_code
            )
        if not isinstance(body, dict):
            raise ApiError("invalid", f"{path} did not answer with a JSON object.", resp.status_code)
        return body

    def rows(self, path: str, params: Params | None = None) -> list[dict[str, Any]]:
        """The ``rows`` list of a list endpoint."""
        rows = self.get(path, params).get("rows")
        if not isinstance(rows, list):
            raise ApiError("invalid", f"{path} answered without a rows list.")
        return [r for r in rows if isinstance(r, dict)]


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        if resp.status_code >= 400:
            return None
        raise ApiError("invalid", f"{resp.url.path} did not answer JSON.", resp.status_code) from None


def client_from_env(env: Mapping[str, str] | None = None) -> ApiClient:
    """The client the pages use: API URL and token from the environment the CLI sets."""
    e = os.environ if env is None else env
    return ApiClient(base_url=e.get(API_ENV) or DEFAULT_API, token=e.get(TOKEN_ENV) or None)
