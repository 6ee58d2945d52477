"""A small HTTP client for the organization Usage and Costs API (admin key).

It retries 408/409/429/5xx and transport failures with exponential backoff, honouring
``retry-after-ms`` / ``retry-after`` (capped), follows ``next_page`` with loop guards, and turns
every other failure into an :class:`AdminApiError` whose message says what to fix. The admin key is
sent, never logged or put in a message.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from spendscope.collector.sync.parse import Page, ParseError, parse_page

__all__ = ["AdminApiError", "AdminClient", "AuthError", "PageFetch", "retry_delay"]

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_PAGES = 10_000  # per query; far above any real window, low enough to stop a runaway cursor
_MAX_BODY = 64 * 1024 * 1024


class AdminApiError(Exception):
    """The API answered with an error (after retries) or with something that is not a page."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthError(AdminApiError):
    """The admin key was refused (401/403): retrying or reading other endpoints will not help."""


@dataclass(frozen=True, slots=True)
class PageFetch:
    page: Page
    retries: int  # retried attempts spent on this page


def retry_delay(headers: httpx.Headers, attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's word, else backoff with jitter."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(max(float(value) * scale, 0.0), max_s)
        except ValueError:
            pass
        if name == "retry-after":
            try:
                when = parsedate_to_datetime(value)
                return min(max(when.timestamp() - time.time(), 0.0), max_s)
            except (TypeError, ValueError):
                pass
    # Full jitter keeps several collectors from retrying in lock step.
    return random.uniform(0, min(max_s, base_s * 2**attempt))


def _error_message(resp: httpx.Response) -> tuple[str, str | None]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        msg = err.get("message") if isinstance(err.get("message"), str) else ""
        code = err.get("code") if isinstance(err.get("code"), str) else None
        return msg[:500], code
    text = resp.text[:200].strip()
    return (text or resp.reason_phrase or "no body"), None


class AdminClient:
    """GETs pages from ``{base_url}/organization/...`` with the admin key."""

    def __init__(
        self,
        base_url: str,
        admin_key: str,
        *,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        max_backoff_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._max_retries = max_retries
        self._backoff_base = backoff_base_s
        self._max_backoff = max_backoff_s
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=timeout_s,
            transport=transport,
            headers={"authorization": f"Bearer {admin_key}", "accept": "application/json"},
            follow_redirects=False,
        )
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_page(self, path: str, params: Sequence[tuple[str, str]]) -> PageFetch:
        """One page, retried on 429/5xx/transport errors; raises :class:`AdminApiError` otherwise."""
        url = f"{self._base}/{path.lstrip('/')}"
        where = f"GET /{path.lstrip('/')}"
        attempt = 0
        while True:
            self.requests += 1
            try:
                resp = self._fetch(url, params, where)
            except httpx.TransportError as e:
                if attempt >= self._max_retries:
                    raise AdminApiError(f"{where}: cannot reach {self._base}: {type(e).__name__}: {e}") from e
                self._sleep(retry_delay(httpx.Headers(), attempt, self._backoff_base, self._max_backoff))
                attempt += 1
                continue
            if resp.status_code in _RETRY_STATUSES and attempt < self._max_retries:
                self._sleep(retry_delay(resp.headers, attempt, self._backoff_base, self._max_backoff))
                attempt += 1
                continue
            return PageFetch(self._page(resp, where), attempt)

    def _fetch(self, url: str, params: Sequence[tuple[str, str]], where: str) -> httpx.Response:
        """GET with the body read up to the limit: a huge answer is refused, never held whole."""
        with self._http.stream("GET", url, params=list(params)) as resp:
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > _MAX_BODY:
                    raise AdminApiError(f"{where}: response larger than {_MAX_BODY} bytes", resp.status_code)
                chunks.append(chunk)
        # The body is decoded already: the new response must not decode it again.
        headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(
            resp.status_code, headers=headers, content=b"".join(chunks), request=resp.request
        )

    def _page(self, resp: httpx.Response, where: str) -> Page:
        status = resp.status_code
        if status in (401, 403):
            msg, code = _error_message(resp)
            raise AuthError(
                f"OpenAI refused the admin key ({status}{', ' + code if code else ''}): {msg} "
                "Set OPENAI_ADMIN_KEY to an organization admin key (sk-admin-...).",
                status,
                code,
            )
        if status != 200:
            msg, code = _error_message(resp)
            tail = " (gave up after retries)" if status in _RETRY_STATUSES else ""
            raise AdminApiError(f"{where}: HTTP {status}{tail}: {msg}", status, code)
        try:
            # parse_float=Decimal keeps money exact: 0.1 stays 0.1, not 0.1000000000000000055...
            doc: Any = json.loads(resp.content, parse_float=Decimal)
            return parse_page(doc)
        except (ValueError, ParseError) as e:
            raise AdminApiError(f"{where}: not a Usage/Costs page: {e}", status) from e

    def pages(self, path: str, params: Sequence[tuple[str, str]]) -> Iterator[PageFetch]:
        """Every page of one query, following ``next_page``; stops on a missing or repeated cursor."""
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            fetched = self.get_page(path, [*params, ("page", cursor)] if cursor else params)
            yield fetched
            page = fetched.page
            # has_more without a cursor cannot be followed: the window's later buckets are read next run.
            if not page.has_more or not page.next_page:
                return
            if page.next_page in seen:
                raise AdminApiError(f"GET /{path}: the API returned the same next_page twice; stopping")
            seen.add(page.next_page)
            cursor = page.next_page
        raise AdminApiError(f"GET /{path}: more than {_MAX_PAGES} pages; stopping")
