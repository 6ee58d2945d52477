"""The one client of the collector's HTTP API (``/api/v1/*``), used by every CLI command and the dashboard.

The base URL and token (``--api``, ``SPENDSCOPE_API``, ``SPENDSCOPE_TOKEN``), the timeouts, the headers
and every error message live here. A failure is one :class:`ApiError`: its ``kind`` says what went
wrong, its message is a sentence a person can act on.

Standard library only (urllib): the CLI commands run from the SDK-only install, which has no httpx,
and one transport everywhere is one behaviour to test. Nothing here reuses a connection or streams,
so httpx would add no capability. Redirects are not followed: urllib would resend the token to
whatever host a redirect names.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from spendscope.isotime import format_time

if TYPE_CHECKING:
    import argparse

__all__ = [
    "API_ENV",
    "COMPACT_TIMEOUT_S",
    "DEFAULT_API",
    "MAX_ANSWER_BYTES",
    "PAGE_TIMEOUT_S",
    "QUERY_TIMEOUT_S",
    "REPRICE_TIMEOUT_S",
    "SYNC_TIMEOUT_S",
    "TOKEN_ENV",
    "ApiClient",
    "ApiError",
    "ErrorKind",
    "Params",
    "add_api_option",
    "ask",
    "client_from_env",
    "default_api",
]

DEFAULT_API = "http://127.0.0.1:4318"
API_ENV = "SPENDSCOPE_API"
TOKEN_ENV = "SPENDSCOPE_TOKEN"

QUERY_TIMEOUT_S = 30.0  # a query from the command line
PAGE_TIMEOUT_S = 10.0  # a dashboard page: someone is watching a spinner
SYNC_TIMEOUT_S = 900.0  # the first sync backfills 30 days of every endpoint of a large organization
REPRICE_TIMEOUT_S = 600.0  # re-pricing rewrites every call since a time
COMPACT_TIMEOUT_S = 900.0  # compaction rewrites the lake's small files
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # an answer larger than this is a bug, not data to show

Params = Mapping[str, str | int | None]
ErrorKind = Literal["unreachable", "unauthorized", "not_found", "bad_request", "server", "invalid"]
_NOT_JSON = object()


class ApiError(Exception):
    """A request failed.

    ``kind``: ``unreachable`` (no answer: refused, timed out, bad URL), ``unauthorized`` (401/403),
    ``not_found`` (404), ``bad_request`` (other 4xx), ``server`` (5xx), ``invalid`` (an answer that is
    not the JSON object the API promises). ``status`` is the HTTP status when there was an answer;
    ``body`` the answer's JSON object when it sent one (a failed sync still reports what it did).
    """

    def __init__(
        self, kind: ErrorKind, message: str, status: int | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class ApiClient:
    """The collector at ``base_url``; ``token`` is sent as ``Authorization: Bearer`` when set."""

    base_url: str = DEFAULT_API
    token: str | None = None
    timeout_s: float = QUERY_TIMEOUT_S

    # Any endpoint -------------------------------------------------------------------------------

    def get(
        self, path: str, params: Params | None = None, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """GET ``path`` (``/api/v1/...``) with the ``params`` that are not None or empty: the JSON object."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None and v != ""}
        return self._request("GET", path, query, None, timeout_s)

    def rows(self, path: str, params: Params | None = None) -> list[dict[str, Any]]:
        """The ``rows`` list of a list endpoint."""
        rows = self.get(path, params).get("rows")
        if not isinstance(rows, list):
            raise ApiError("invalid", f"{path} answered without a rows list.")
        return [r for r in rows if isinstance(r, dict)]

    def post(
        self, path: str, body: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """POST ``body`` as JSON (``{}`` when None): the collector accepts only JSON on state changes."""
        return self._request("POST", path, {}, dict(body or {}), timeout_s)

    # The endpoints the commands use -------------------------------------------------------------

    def spend(self, start: datetime, end: datetime | None = None, group_by: str = "model") -> dict[str, Any]:
        """``GET /api/v1/spend``: rows and totals per ``group_by`` (a comma list); ``end`` defaults to now."""
        params = {"start": format_time(start), "end": format_time(end) if end else None, "group_by": group_by}
        return self.get("/api/v1/spend", params)

    def sync(self) -> dict[str, Any]:
        """``POST /api/v1/sync``: run a Usage/Costs sync now and wait for its counts."""
        return self.post("/api/v1/sync", timeout_s=SYNC_TIMEOUT_S)

    def reprice(self, since: datetime) -> dict[str, Any]:
        """``POST /api/v1/prices/reprice``: price again every call since ``since``."""
        return self.post("/api/v1/prices/reprice", {"since": format_time(since)}, timeout_s=REPRICE_TIMEOUT_S)

    def lake_status(self) -> dict[str, Any]:
        """``GET /api/v1/lake``: this replica, the leader, shipping and the lake's files."""
        return self.get("/api/v1/lake")

    def lake_compact(self) -> dict[str, Any]:
        """``POST /api/v1/lake/compact``: merge the lake's small files now."""
        return self.post("/api/v1/lake/compact", timeout_s=COMPACT_TIMEOUT_S)

    def alerts(self, state: str = "firing") -> dict[str, Any]:
        """``GET /api/v1/alerts``: alerts that are ``firing``, ``resolved`` or ``all``."""
        return self.get("/api/v1/alerts", {"state": state})

    def test_alert(self, rule: str) -> dict[str, Any]:
        """``POST /api/v1/alerts/{rule}/test``: queue a test notification through the rule's channels."""
        return self.post(f"/api/v1/alerts/{urllib.parse.quote(rule, safe='')}/test")

    # The one request path -----------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: dict[str, Any] | None,
        timeout_s: float | None,
    ) -> dict[str, Any]:
        url = self._url(path, query)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            try:
                with _opener().open(request, timeout=timeout) as response:
                    status, raw = response.status, _read(response)
            except urllib.error.HTTPError as exc:
                with exc:
                    status, raw = exc.code, _read(exc)
        except TimeoutError:
            raise self._timed_out(timeout) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._timed_out(timeout) from None
            raise self._unreachable(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:  # reset, closed or garbled mid-answer
            raise self._unreachable(exc) from None
        return _answer(path, status, raw, self.token)

    def _url(self, path: str, query: Mapping[str, str]) -> str:
        base = self.base_url.rstrip("/")
        try:
            parts = urllib.parse.urlsplit(base)
        except ValueError:  # an unclosed [IPv6] bracket
            parts = urllib.parse.SplitResult("", "", "", "", "")
        # Only http(s): urllib would also read file:// and ftp:// URLs.
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiError(
                "unreachable",
                f"The collector URL must be an http(s) URL such as {DEFAULT_API}, not {self.base_url!r} "
                f"(from --api or {API_ENV}).",
            )
        return base + path + ("?" + urllib.parse.urlencode(query) if query else "")

    def _timed_out(self, timeout: float) -> ApiError:
        return ApiError(
            "unreachable", f"The collector at {self.base_url} did not answer within {timeout:g} s."
        )

    def _unreachable(self, reason: object) -> ApiError:
        return ApiError(
            "unreachable",
            f"Cannot reach the collector at {self.base_url} ({reason}). "
            f"Start it with `spendscope collector`, or give its URL with --api or {API_ENV}.",
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then reaches _answer as an HTTPError


def _opener() -> urllib.request.OpenerDirector:
    # Built per request: the proxy handler reads the *_proxy variables when it is made.
    return urllib.request.build_opener(_NoRedirect)


def _read(response: Any) -> bytes:
    raw: bytes = response.read(MAX_ANSWER_BYTES + 1)
    return raw


def _answer(path: str, status: int, raw: bytes, token: str | None) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or the :class:`ApiError` that says what is wrong with it."""
    if len(raw) > MAX_ANSWER_BYTES:
        raise ApiError("invalid", f"{path} answered with more than {MAX_ANSWER_BYTES} bytes.", status)
    doc = _decode(raw)
    body = doc if isinstance(doc, dict) else None
    if status in (401, 403):
        hint = (
            f"the token in {TOKEN_ENV} was refused"
            if token
            else f"it requires a token: set {TOKEN_ENV} to the collector's token"
        )
        raise ApiError("unauthorized", f"The collector refused the request: {hint}.", status, body)
    if 300 <= status < 400:
        raise ApiError(
            "invalid",
            f"{path} answered {status}, a redirect: give the collector's own URL with --api or {API_ENV}.",
            status,
        )
    detail = _detail(doc, raw)
    if status == 404 and (body is None or detail is None):  # the router's, not an endpoint's "no rule ..."
        raise ApiError(
            "not_found", f"This collector has no {path} endpoint (it may be an older version).", 404
        )
    if status >= 400:
        kind: ErrorKind = "not_found" if status == 404 else "bad_request" if status < 500 else "server"
        raise ApiError(kind, f"{path} answered {status}: {detail or _phrase(status)}", status, body)
    if doc is _NOT_JSON:
        raise ApiError("invalid", f"{path} did not answer JSON.", status)
    if body is None:
        raise ApiError("invalid", f"{path} did not answer with a JSON object.", status)
    return body


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # also bad UTF-8
        return _NOT_JSON


def _detail(doc: Any, raw: bytes) -> str | None:
    """What the answer says went wrong: the API's ``error`` text, or a short plain-text body."""
    if isinstance(doc, dict):
        error = doc.get("error")
        return error if isinstance(error, str) and error else None
    if doc is _NOT_JSON:
        text = " ".join(raw[:300].decode("utf-8", "replace").split())
        return text if text and not text.startswith("<") else None  # an HTML error page says nothing
    return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def default_api(env: Mapping[str, str] | None = None) -> str:
    """The collector URL: ``SPENDSCOPE_API``, else ``http://127.0.0.1:4318``."""
    e = os.environ if env is None else env
    return (e.get(API_ENV) or DEFAULT_API).rstrip("/")


def client_from_env(
    env: Mapping[str, str] | None = None, *, api: str | None = None, timeout_s: float = QUERY_TIMEOUT_S
) -> ApiClient:
    """The client for ``api`` (default :func:`default_api`) with the token from ``SPENDSCOPE_TOKEN``."""
    e = os.environ if env is None else env
    return ApiClient(base_url=api or default_api(e), token=e.get(TOKEN_ENV) or None, timeout_s=timeout_s)


def add_api_option(parser: argparse.ArgumentParser) -> None:
    """``--api URL``, the option of every command that talks to the collector."""
    parser.add_argument(
        "--api", default=default_api(), help=f"collector URL (default {API_ENV} or {DEFAULT_API})"
    )


def ask(
    api: str | None, command: str, request: Callable[[ApiClient], dict[str, Any]]
) -> dict[str, Any] | None:
    """A CLI command's one request to the collector at ``api``: the answer, or ``None`` once the
    error is printed as ``spendscope <command>: <message>`` (the command then exits 1)."""
    try:
        return request(client_from_env(api=api))
    except ApiError as err:
        print(f"spendscope {command}: {err}", file=sys.stderr)
        return None
