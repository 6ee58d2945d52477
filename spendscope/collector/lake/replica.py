"""This replica's side of the lake: attach, read views, the shipper and control threads, status.

Reads: every query cursor of the store (:meth:`Store.cursor`) resolves table names through an
in-memory schema of views first: ``calls`` is the lake's calls plus this replica's unshipped rows,
``rollup_state`` marks the days of those rows dirty (so the query layer reads them from ``calls``),
and the rollups, sync and alert tables are the lake's. So the query API, alerts and reconciliation
run unchanged and answer from the lake plus the replica's own rows.

Two threads: the control loop (registration, heartbeat, the leader's lease, the lake's schema, the
read views; every ``lease_s / 5``) and the shipper (every ``ship_interval_s``, sooner when a full
chunk is waiting). An unreachable catalog is not an error: ingest goes on into the local file, the
loops retry, and the shipper catches up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from spendscope.collector.config import ConfigError, RetentionSettings
from spendscope.collector.lake.control import LEASE_S, Control, DuplicateReplica, LeaseClock
from spendscope.collector.lake.extensions import load_extensions
from spendscope.collector.lake.schema import SHARED_TABLES, latest_version, migrate_lake, schema_version
from spendscope.collector.lake.settings import LakeSettings
from spendscope.collector.lake.shipper import (
    CHUNK_ROWS,
    LOCAL_TABLES,
    Strategy,
    claim,
    confirmed_ships,
    local_unshipped_sql,
    pending_ships,
    read_chunk,
    settle,
    ship_chunk,
)
from spendscope.collector.rollups import apply_retention, roll_dirty_days
from spendscope.collector.schema import COLUMNS
from spendscope.collector.store import Store
from spendscope.isotime import format_time

__all__ = ["LAKE", "LakeReplica", "LakeState", "LakeUnavailable", "check_data_path"]

log = logging.getLogger("spendscope.collector.lake")

# The attached catalog's name: not "lake", which a local file named lake.duckdb would already take.
LAKE = "spendscope_lake"
_READ = "spendscope_read"  # the in-memory database of read views
_META = f"__ducklake_metadata_{LAKE}"
T = TypeVar("T")
_NAMES = ", ".join(c.name for c in COLUMNS)
# Old snapshots and the files only they use are kept this long, so a reader in the middle of a
# query (an outside notebook, say) never loses a file under it.
_KEEP_SNAPSHOTS = "INTERVAL 10 MINUTES"


class LakeUnavailable(RuntimeError):
    """The lake cannot answer yet (catalog unreachable, schema not created)."""


def check_data_path(data_path: str) -> None:
    """A local data path must be a directory this process can write: say so at start if not."""
    if "://" in data_path:
        return  # object storage: its credentials are DuckDB's business, checked at the first write
    path = Path(data_path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".spendscope-write-check-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"lake.data_path {data_path!r} is not a directory this collector can write: {exc.strerror or exc}"
        ) from None


def _instance(store: Store, replica: str) -> str:
    """This replica's instance id, kept in its local file: a restart under the same name and file is
    the same replica (and rejoins at once), while another process under the name, with another
    file, is a second live replica (refused). DuckDB's file lock makes one process per file."""
    con = store.connection
    for sql in LOCAL_TABLES:
        con.execute(sql)
    row = con.execute("SELECT instance FROM lake_identity WHERE replica = ?", [replica]).fetchone()
    if row is not None:
        return str(row[0])
    instance = uuid.uuid4().hex
    con.execute("INSERT INTO lake_identity VALUES (?, ?)", [replica, instance])
    return instance


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


class LakeState:
    """The store of the shared tables (sync, alerts, rollups) for the code that writes them.

    Same shape as :class:`~spendscope.collector.store.Store` for its users: ``cursor()`` reads
    (through the views) and ``run_write(fn)`` runs ``fn(connection)`` on a lake connection whose
    default catalog is the lake, one at a time, rerunning it when its commit conflicts.
    """

    def __init__(self, replica: LakeReplica) -> None:
        self._replica = replica
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._replica.store.cursor()

    def run_write(self, fn: Callable[[duckdb.DuckDBPyConnection], T], timeout: float | None = 120.0) -> T:
        self._replica.require_ready()
        with self._lock:
            if self._con is None:
                con = self._replica.store.connection.cursor()
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f"USE {LAKE}")
                self._con = con
            for attempt in range(1, 11):
                try:
                    return fn(self._con)
                except duckdb.TransactionException:
                    _rollback(self._con)
                    if attempt == 10:
                        raise
                    time.sleep(0.05 * attempt)
            raise AssertionError("unreachable")


class LakeReplica:
    """See the module doc. Built by :func:`start_lake`; ``start()`` runs the threads."""

    def __init__(
        self,
        settings: LakeSettings,
        store: Store,
        replica: str,
        *,
        retention: RetentionSettings,
        strategy: Strategy = "not_exists",
        rows_committed: Callable[[], int] = lambda: 0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.retention = retention
        self.strategy = strategy
        self._rows_committed = rows_committed
        self.control = Control(
            settings, replica, host=os.uname().nodename, instance=_instance(store, replica)
        )
        self.replica = replica
        self.lease = LeaseClock(LEASE_S, margin_s=LEASE_S / 3)
        self.state = LakeState(self)
        row = store.connection.execute("SELECT current_database()").fetchone()
        assert row is not None
        name = str(row[0])
        self.local_db = '"' + name.replace('"', '""') + '"'  # quoted: file names may hold any character
        self.attached = False
        self.registered = False
        self.ready = False  # schema in place and read views made
        self.fatal: str | None = None  # a condition only an operator can fix (two replicas, one name)
        self.error: str | None = None  # the last failure, cleared by the next success
        self.leader_replica: str | None = None
        self.last_ship_at: datetime | None = None
        self.shipments = 0
        self.shipped_rows = 0  # rows this process shipped (stored + already there)
        self.last_compaction_at: datetime | None = None
        self._shipped_at_commit = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ship_lock = threading.Lock()
        self._attach_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._ship_con: duckdb.DuckDBPyConnection | None = None
        load_extensions(store.connection)
        store.on_cursor = self._read_cursor

    # --- start and stop -----------------------------------------------------------------------
    def first_contact(self) -> None:
        """At start: one round of the control loop; a duplicate replica name is fatal, an
        unreachable catalog only logged (the loop retries)."""
        try:
            self._control_round()
        except DuplicateReplica as exc:
            raise ConfigError(str(exc)) from None
        if self.error:
            log.warning(
                "lake catalog not reachable yet (%s); acknowledging locally, shipping later", self.error
            )

    def start(self) -> None:
        for name, target in (
            ("spendscope-lake-control", self._control_loop),
            ("spendscope-lake-ship", self._ship_loop),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, ship_timeout_s: float = 10.0) -> None:
        """Stop the loops, ship what is left (bounded), give the lease up."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(30)
        if self.ready and not self.fatal:
            deadline = time.monotonic() + ship_timeout_s
            try:
                while time.monotonic() < deadline and self.ship_once() == CHUNK_ROWS:
                    pass
                self._settle()  # nobody reads any more: let the shipped rows go now
            except Exception as exc:
                log.warning(
                    "final shipment failed (%s); the rows stay in the local file for the next start", exc
                )
        try:
            if self.registered and not self.fatal:
                if self.lease.held:
                    self.control.release()
                self.control.deregister()
        except duckdb.Error as exc:
            log.info("could not deregister from the catalog: %s", exc)
        self.lease.lost()
        self.control.close()

    # --- leadership ---------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.lease.held and self.ready and not self.fatal and not self._stop.is_set()

    def _control_loop(self) -> None:
        period = LEASE_S / 5
        while not self._stop.wait(period):
            try:
                self._control_round()
            except DuplicateReplica as exc:
                self.fatal = str(exc)
                self.lease.lost()
                log.error("%s; this replica stops shipping until restarted under its own name", exc)
                return
            except Exception:
                log.exception("lake control round failed")

    def _control_round(self) -> None:
        try:
            if not self.registered:
                self.control.register()
                self.registered = True
            else:
                self.control.heartbeat()
            self._attach()
            sent = time.monotonic()
            view = self.control.acquire()
            if view.mine:
                if not self.lease.held:
                    log.info("this replica (%s) leads now (term %d)", self.replica, view.term)
                self.lease.renewed(sent)
            else:
                self.lease.lost()
            self.leader_replica = view.holder
            if not self.ready:
                self._prepare()
            self.error = None
        except DuplicateReplica:
            raise
        except duckdb.Error as exc:
            self.error = f"catalog: {exc}".splitlines()[0][:500]
            log.debug("lake control round failed: %s", exc)

    def _attach(self) -> None:
        with self._attach_lock:
            if self.attached:
                return
            libpq = self.settings.attach_string.replace("'", "''")
            data = self.settings.data_path.replace("'", "''")
            self.store.connection.cursor().execute(
                f"ATTACH IF NOT EXISTS '{libpq}' AS {LAKE} (DATA_PATH '{data}')"
            )
            self.attached = True
            log.info("lake attached: %s, data in %s", self.settings.redacted(), self.settings.data_path)

    def _prepare(self) -> None:
        """The lake's schema (migrated by the leader), then the read views."""
        con = self.store.connection.cursor()
        try:
            version = schema_version(con, LAKE)
            if version < latest_version() and self.lease.held:
                migrate_lake(con, LAKE)
                version = schema_version(con, LAKE)
            if version < latest_version():
                self.error = (
                    f"waiting for the leader to migrate the lake (schema {version} < {latest_version()})"
                )
                return
            self._make_views(con)
        finally:
            con.close()
        self.ready = True
        log.info(
            "lake ready: schema %d, reads answer from the lake plus this replica's unshipped rows", version
        )

    def _make_views(self, con: duckdb.DuckDBPyConnection) -> None:
        local = self.local_db
        con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_READ}")
        view = f"CREATE OR REPLACE VIEW {_READ}.main"
        # A local row shows until the ledger of the lake snapshot being read holds its shipment: so
        # no reader counts a shipped row twice, whenever the local file lets it go.
        unshipped = local_unshipped_sql(local, LAKE, self.replica)
        con.execute(f"{view}.calls AS SELECT {_NAMES} FROM {LAKE}.main.calls UNION ALL {unshipped}")
        con.execute(
            # One row per day (the query layer reads each dirty day once): dirty in the lake, or
            # holding rows of this replica the lake may not show yet.
            f"{view}.rollup_state AS SELECT day, bool_or(dirty) AS dirty, max(rolled_at) AS rolled_at FROM "
            f"(SELECT day, dirty, rolled_at FROM {LAKE}.main.rollup_state UNION ALL "
            f"SELECT DISTINCT day, true, NULL::TIMESTAMPTZ FROM {local}.main.calls) GROUP BY day"
        )
        for table in SHARED_TABLES:
            con.execute(f"{view}.{table} AS SELECT * FROM {LAKE}.main.{table}")

    def require_ready(self) -> None:
        if self.fatal:
            raise LakeUnavailable(self.fatal)
        if not self.ready:
            raise LakeUnavailable(
                f"the lake is not reachable yet ({self.error or 'connecting'}); ingest is acknowledged "
                "locally and shipped when it is"
            )

    def _read_cursor(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.require_ready()
        cur.execute(f"SET search_path = '{_READ}.main,{self.local_db}.main'")

    # --- shipping -------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def _ship_loop(self) -> None:
        interval = self.settings.ship_interval_s
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait(0.25)
            self._wake.clear()
            if self._stop.is_set():
                return
            waiting = self._rows_committed() - self._shipped_at_commit
            if time.monotonic() - last < interval and waiting < CHUNK_ROWS:
                continue
            last = time.monotonic()
            if not self.ready or self.fatal:
                continue
            try:
                while self.ship_once() == CHUNK_ROWS and not self._stop.is_set():
                    pass
            except Exception as exc:
                self.error = f"shipping: {exc}".splitlines()[0][:500]
                log.warning("shipping failed (%s); the rows wait in the local file", self.error)

    def _con(self) -> duckdb.DuckDBPyConnection:
        if self._ship_con is None:
            self._ship_con = self.store.connection.cursor()
            self._ship_con.execute("SET TimeZone = 'UTC'")
        return self._ship_con

    def _settle(self) -> int:
        """Let go of the local rows of shipments the lake's ledger shows; re-open failed ones."""
        con = self._con()
        pending = pending_ships(con, self.local_db)
        if not pending:
            return 0
        shipped = confirmed_ships(con, LAKE, pending)
        failed = sorted(set(pending) - set(shipped))
        if failed:
            log.info("%d shipment(s) did not reach the lake; their rows ship again", len(failed))
        deleted: int = self.store.run_write(lambda c: settle(c, self.local_db, shipped, failed))
        return deleted

    def ship_once(self) -> int:
        """Settle earlier shipments, then ship the oldest unclaimed chunk; the rows it carried."""
        with self._ship_lock:
            self.require_ready()
            self._settle()
            con = self._con()
            committed = self._rows_committed()
            chunk = read_chunk(con, self.local_db)
            if not chunk.num_rows:
                self._shipped_at_commit = committed
                return 0
            t0 = time.perf_counter()
            ship_id = uuid.uuid4().hex
            keys = chunk.select(["trace_id", "span_id"])
            self.store.run_write(lambda c: claim(c, self.local_db, ship_id, keys))
            result = ship_chunk(con, LAKE, self.replica, ship_id, chunk, self.strategy)
            self.shipments += 1
            self.shipped_rows += result.rows
            self._shipped_at_commit = committed
            self.last_ship_at = datetime.now().astimezone()
            log.debug(
                "shipped %d rows (%d new) in %.0f ms, %d tries",
                result.rows,
                result.stored,
                (time.perf_counter() - t0) * 1e3,
                result.tries,
            )
            return result.rows

    # --- the leader's jobs ----------------------------------------------------------------------
    def roll_up(self, now: datetime, interval_s: float) -> int:
        """Re-roll the lake's dirty days that no shipment touched for ``interval_s`` (leader only)."""
        total = 0
        while True:

            def task(con: duckdb.DuckDBPyConnection) -> int:
                busy = [
                    r[0]
                    for r in con.execute(
                        "SELECT day FROM rollup_state WHERE dirty AND marked_at > $t",
                        {"t": now - timedelta(seconds=interval_s)},
                    ).fetchall()
                ]
                return roll_dirty_days(
                    con, now, limit=4, skip=busy, fence=f"UPDATE {LAKE}.main.ship_fence SET seq = seq + 1"
                )

            n = self.state.run_write(task)
            total += n
            if n < 4:
                return total

    def apply_retention(self, now: datetime) -> dict[str, int]:
        lake_only = self.retention.model_copy(update={"rejected_days": None})  # rejected spans stay local
        return self.state.run_write(lambda con: apply_retention(con, now, lake_only))

    def files(self, con: duckdb.DuckDBPyConnection | None = None) -> int:
        cur = con or self.store.connection.cursor()
        row = cur.execute(
            f"SELECT count(*) FROM {_META}.ducklake_data_file WHERE end_snapshot IS NULL"
        ).fetchone()
        return int(row[0]) if row else 0

    def compact(self) -> dict[str, Any]:
        """Merge adjacent small files, apply deletes, expire old snapshots and remove their files."""
        self.require_ready()
        con = self.store.connection.cursor()
        try:
            t0 = time.perf_counter()
            before = self.files(con)
            con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')")
            con.execute(f"CALL ducklake_rewrite_data_files('{LAKE}')")
            con.execute(f"CALL ducklake_expire_snapshots('{LAKE}', older_than => now() - {_KEEP_SNAPSHOTS})")
            con.execute(f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => now() - {_KEEP_SNAPSHOTS})")
            after = self.files(con)
            took = time.perf_counter() - t0
            con.execute(
                f"INSERT INTO {LAKE}.main.compactions VALUES (?, now(), ?, ?, ?)",
                [self.replica, before, after, took],
            )
        finally:
            con.close()
        self.last_compaction_at = datetime.now().astimezone()
        log.info("lake compacted: %d files -> %d in %.1f s", before, after, took)
        return {"files_before": before, "files_after": after, "duration_s": round(took, 3)}

    # --- status -----------------------------------------------------------------------------------
    def unshipped_rows(self) -> int:
        """Acknowledged rows the lake does not show yet (all local rows while it is unreachable)."""
        cur = self.store.connection.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            if self.ready:
                try:
                    unshipped = local_unshipped_sql(self.local_db, LAKE, self.replica)
                    row = cur.execute(f"SELECT count(*) FROM ({unshipped})").fetchone()
                    return int(row[0]) if row else 0
                except duckdb.Error:
                    pass
            row = cur.execute(f"SELECT count(*) FROM {self.local_db}.main.calls").fetchone()
        finally:
            cur.close()
        return int(row[0]) if row else 0

    def status(self) -> dict[str, Any]:
        """The one object of ``GET /api/v1/lake``, ``spendscope lake status`` and ``/healthz``."""
        out: dict[str, Any] = {
            "lake": True,
            "replica": self.replica,
            "leader": self.is_leader,
            "leader_replica": self.leader_replica if self.ready else None,
            "unshipped_rows": self.unshipped_rows(),
            "last_ship_at": format_time(self.last_ship_at) if self.last_ship_at else None,
            "replicas": [],
            "files": None,
            "last_compaction_at": None,
            "catalog": self.settings.redacted(),
            "data_path": self.settings.data_path,
            "ship_interval_s": self.settings.ship_interval_s,
            "reachable": self.ready and self.error is None,
            "error": self.fatal or self.error,
        }
        if not self.ready:
            return out
        con = self.store.connection.cursor()
        try:
            con.execute("SET TimeZone = 'UTC'")
            shipped = {
                r[0]: (int(r[1]), r[2])
                for r in con.execute(
                    f"SELECT replica, sum(stored), max(shipped_at) FROM {LAKE}.main.ship_log GROUP BY replica"
                ).fetchall()
            }
            names = set(shipped) | {r.replica for r in self.control.replicas()}
            out["replicas"] = [
                {
                    "replica": name,
                    "shipped_rows": shipped.get(name, (0, None))[0],
                    "last_ship_at": _iso(shipped.get(name, (0, None))[1]),
                }
                for name in sorted(names)
            ]
            out["files"] = self.files(con)
            row = con.execute(f"SELECT max(compacted_at) FROM {LAKE}.main.compactions").fetchone()
            out["last_compaction_at"] = _iso(row[0] if row else None)
        except duckdb.Error as exc:
            out["reachable"] = False
            out["error"] = f"catalog: {exc}".splitlines()[0][:500]
        finally:
            con.close()
        return out


def _iso(t: Any) -> str | None:
    return format_time(t) if isinstance(t, datetime) else None
