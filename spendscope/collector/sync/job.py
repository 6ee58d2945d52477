"""One Usage/Costs sync run: windows, paging, idempotent writes, checkpoints and the run record.

Windows: an endpoint never read starts 30 days back (``backfill_days``); later runs start at the
earlier of where the last run got to and ``trailing`` (48 h) ago, because OpenAI revises recent
buckets. Starts are aligned to bucket boundaries so every stored bucket is a whole bucket and a
re-read replaces it exactly. Each page is committed with the endpoint's checkpoint in one
transaction, so a run that dies resumes at the first bucket it had not committed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from spendscope.collector.sync import db
from spendscope.collector.sync.client import AdminApiError, AdminClient, AuthError
from spendscope.collector.sync.config import SyncSettings
from spendscope.collector.sync.estimate import Estimate, estimate_row
from spendscope.collector.sync.parse import CostRow, UsageRow, cost_rows, usage_rows
from spendscope.pricing import PriceTable

__all__ = ["EndpointReport", "RunResult", "SyncBusyError", "SyncJob", "window_start"]

log = logging.getLogger("spendscope.sync")

_PAGE_LIMIT = {"1m": 1440, "1h": 168, "1d": 31}  # the API's maximum buckets per page, per width
_COSTS_LIMIT = 180
_DAY = 86400


class SyncBusyError(RuntimeError):
    """Another run holds the lock for longer than the caller was willing to wait."""


@dataclass(slots=True)
class EndpointReport:
    endpoint: str
    window_start: int | None = None
    window_end: int | None = None
    resumed: bool = False
    requests: int = 0
    retries: int = 0
    pages: int = 0
    buckets: int = 0
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    error: str | None = None


@dataclass(slots=True)
class RunResult:
    run_id: int
    trigger: str
    status: str  # ok | error
    started_at: float
    finished_at: float = 0.0
    error: str | None = None
    auth_failed: bool = False
    endpoints: list[EndpointReport] = field(default_factory=list)
    bill: dict[str, Any] | None = None  # what the costs read taught about prices (see sync/bill.py)

    def total(self, name: str) -> int:
        return sum(int(getattr(e, name)) for e in self.endpoints)

    @property
    def window(self) -> tuple[int | None, int | None]:
        starts = [e.window_start for e in self.endpoints if e.window_start is not None]
        ends = [e.window_end for e in self.endpoints if e.window_end is not None]
        return (min(starts) if starts else None, max(ends) if ends else None)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of POST /api/v1/sync (and the run record's details)."""
        start, end = self.window
        return {
            "ok": self.status == "ok",
            "run_id": self.run_id,
            "trigger": self.trigger,
            "status": self.status,
            "error": self.error,
            "window_start": None if start is None else db.utc(start).isoformat(),
            "window_end": None if end is None else db.utc(end).isoformat(),
            "duration_s": round(self.finished_at - self.started_at, 3),
            **{c: self.total(c) for c in db.RUN_COUNTS},
            "errors": sum(1 for e in self.endpoints if e.error),
            "endpoints": [asdict(e) for e in self.endpoints],
            "bill_prices": self.bill,
        }


def window_start(
    state: db.EndpointState, now: float, width: int, backfill_days: int, trailing_s: float
) -> int:
    """Where an endpoint's read starts (aligned down to ``width``)."""
    if state.synced_through is None and state.resume_from is None:
        start = now - backfill_days * _DAY
    else:
        # Everything before resume_from (a crashed run's progress) or synced_through is stored.
        done = state.resume_from if state.resume_from is not None else state.synced_through
        assert done is not None
        start = min(done, now - trailing_s)
    return int(start) // width * width


class SyncJob:
    """Runs syncs one at a time; safe to call from the scheduler thread and request threads."""

    def __init__(
        self,
        settings: SyncSettings,
        write: Callable[[Callable[[duckdb.DuckDBPyConnection], Any]], Any],
        prices: Callable[[], PriceTable],
        *,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[SyncSettings], AdminClient] | None = None,
        on_page: Callable[[str, int], None] | None = None,
        after_costs: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        # Every write goes through the collector's single writer (Store.run_write), like ingest.
        self._write = write
        self._prices = prices
        self._clock = clock
        self._client_factory = client_factory or _default_client
        self._on_page = on_page  # test hook: called after each committed page
        # Called once the costs were read without error (the bill's prices); its answer is the run's.
        self._after_costs = after_costs
        self._lock = threading.Lock()

    def run(self, trigger: str = "manual", wait_s: float = 600.0) -> RunResult:
        """Run a sync now (waiting up to ``wait_s`` for a run in progress); never raises for API errors."""
        if not self._lock.acquire(timeout=wait_s):
            raise SyncBusyError(f"a sync has been running for more than {wait_s:.0f} s")
        try:
            return self._run(trigger)
        finally:
            self._lock.release()

    def run_scheduled(self) -> None:
        """The scheduler's entry point: a failure is recorded in sync_runs and logged, never raised."""
        try:
            result = self.run("schedule", wait_s=0.0)
        except SyncBusyError:
            log.info("sync: previous run still in progress, skipping this tick")
            return
        except Exception:
            log.exception("sync: run failed unexpectedly")
            return
        if result.status != "ok":
            log.warning("sync run %d failed: %s", result.run_id, result.error)

    def _run(self, trigger: str) -> RunResult:
        interrupted = self._write(db.mark_interrupted)
        if interrupted:
            log.warning(
                "sync: %d earlier run(s) were interrupted; resuming from their checkpoints", interrupted
            )
        started = self._clock()
        t0 = time.monotonic()
        run_id = self._write(lambda con: db.start_run(con, trigger, started))
        result = RunResult(run_id=run_id, trigger=trigger, status="ok", started_at=started)
        s = self.settings
        if not s.admin_key:
            result.error = (
                f"no admin key: set {s.admin_key_env} to an OpenAI organization admin key (sk-admin-...)"
            )
        elif not s.enabled:
            result.error = "sync is disabled in the [sync] section of the config file"
        else:
            client = self._client_factory(s)
            try:
                for endpoint in s.endpoints:
                    report = EndpointReport(endpoint)
                    result.endpoints.append(report)
                    requests_before = client.requests
                    try:
                        self._sync_endpoint(client, run_id, report)
                    except AuthError as e:
                        report.error = str(e)
                        result.auth_failed = True
                        break  # the same key would be refused by every endpoint
                    except AdminApiError as e:
                        report.error = str(e)
                    except (duckdb.Error, ValueError, TypeError, KeyError) as e:
                        log.exception("sync: %s failed", endpoint)
                        report.error = f"{endpoint}: {type(e).__name__}: {e}"
                    finally:
                        report.requests = client.requests - requests_before
            finally:
                client.close()
            if self._after_costs is not None and any(
                r.endpoint == "costs" and not r.error for r in result.endpoints
            ):
                try:
                    result.bill = self._after_costs()
                except (duckdb.Error, ValueError, ArithmeticError) as e:
                    log.exception("sync: prices from the bill failed")
                    result.bill = {"error": f"prices from the bill: {type(e).__name__}: {e}"}
            failed = [r for r in result.endpoints if r.error]
            if failed:
                result.error = (
                    failed[0].error
                    if len(failed) == 1
                    else (f"{len(failed)} endpoints failed; first: {failed[0].error}")
                )
        if result.bill is not None and result.bill.get("error") and not result.error:
            result.error = result.bill["error"]
        if result.error:
            result.status = "error"
        result.finished_at = started + (time.monotonic() - t0)
        self._record(result)
        return result

    def _record(self, result: RunResult) -> None:
        d = result.as_dict()
        start, end = result.window
        record = {
            **{k: d[k] for k in ("status", "error", "duration_s", "errors")},
            **{k: d[k] for k in ("requests", "retries", "pages", "buckets", "rows_read")},
            **{k: d[k] for k in ("rows_inserted", "rows_updated", "rows_deleted")},
            "finished_at": db.utc(result.finished_at),
            "window_start": None if start is None else db.utc(start),
            "window_end": None if end is None else db.utc(end),
            "details": json.dumps(d["endpoints"]),
        }
        self._write(lambda con: db.finish_run(con, result.run_id, record))

    def _sync_endpoint(self, client: AdminClient, run_id: int, report: EndpointReport) -> None:
        s = self.settings
        endpoint = report.endpoint
        is_costs = endpoint == "costs"
        state_key = "costs" if is_costs else f"usage/{endpoint}"
        width_name = "1d" if is_costs else s.bucket_width
        width = _DAY if is_costs else s.bucket_seconds
        state: db.EndpointState = self._write(lambda con: db.load_state(con, state_key))
        now = self._clock()
        start = window_start(state, now, width, s.backfill_days, s.trailing_s)
        report.window_start, report.window_end = start, int(now)
        report.resumed = state.resume_from is not None
        params: list[tuple[str, str]] = [
            ("start_time", str(start)),
            ("bucket_width", width_name),
            ("limit", str(_COSTS_LIMIT if is_costs else _PAGE_LIMIT[width_name])),
        ]
        params += [("group_by[]", g) for g in s.group_by.get(endpoint, ())]
        path = "organization/costs" if is_costs else f"organization/usage/{endpoint}"
        table = self._prices()
        synced_through = state.synced_through
        for fetched in client.pages(path, params):
            page = fetched.page
            report.pages += 1
            report.retries += fetched.retries
            last_page = not (page.has_more and page.next_page)
            if page.buckets and last_page:
                synced_through = max(page.buckets[-1].end, synced_through or 0)
            if page.buckets:
                resume_from: int | None = None if last_page else page.buckets[-1].end
            else:
                resume_from = None if last_page else state.resume_from

            # Parse and price outside the writer thread: it only compares and writes.
            crows = [r for b in page.buckets for r in cost_rows(b)] if is_costs else []
            urows = [] if is_costs else [r for b in page.buckets for r in usage_rows(endpoint, b)]
            priced = [(r, estimate_row(r, table)) for r in urows]
            span = (page.buckets[0].start, page.buckets[-1].end) if page.buckets else None

            def commit_page(
                con: duckdb.DuckDBPyConnection,
                span: tuple[int, int] | None = span,
                crows: list[CostRow] = crows,
                priced: list[tuple[UsageRow, Estimate]] = priced,
                resume_from: int | None = resume_from,
                synced_through: int | None = synced_through,
            ) -> tuple[int, db.WriteCounts]:
                con.begin()
                try:
                    counts = db.WriteCounts()
                    if span is not None:
                        if is_costs:
                            counts = db.write_cost_page(con, span, crows)
                        else:
                            counts = db.write_usage_page(con, endpoint, span, width, priced)
                    db.save_state(
                        con,
                        state_key,
                        synced_through=synced_through,
                        resume_from=resume_from,
                        run_id=run_id,
                        now=self._clock(),
                    )
                    con.commit()
                except BaseException:
                    con.rollback()
                    raise
                return len(crows) + len(priced), counts

            read, counts = self._write(commit_page)
            report.buckets += len(page.buckets)
            report.rows_read += read
            report.rows_inserted += counts.inserted
            report.rows_updated += counts.updated
            report.rows_deleted += counts.deleted
            if self._on_page is not None:
                self._on_page(endpoint, report.pages)


def _default_client(s: SyncSettings) -> AdminClient:
    assert s.admin_key is not None
    return AdminClient(
        s.base_url,
        s.admin_key,
        timeout_s=s.timeout_s,
        max_retries=s.max_retries,
        max_backoff_s=s.max_backoff_s,
    )
