"""The replicas' registry and the leader's lease, in the catalog's PostgreSQL database.

Both live in plain PostgreSQL tables next to DuckLake's own (``spendscope_replicas``,
``spendscope_lease``), reached through DuckDB's postgres extension on a connection of their own.
Times are the database server's ``now()``, so the replicas' clocks never have to agree.

- A replica registers under its name with its instance id (kept in its local file, so a restart is
  the same instance) and heartbeats every few seconds; a second live process under the same name is
  refused (a name is an identity: its ship ledger).
- The lease: one row, taken when it has expired or is already ours, renewed by its holder. The
  holder counts as leader only until its local deadline (the lease length minus a margin, measured
  from before the renewal was sent), so it stops its singletons before anyone else can start them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb

from spendscope.collector.lake.extensions import load_extensions
from spendscope.collector.lake.settings import LakeSettings

__all__ = ["LEASE_S", "Control", "DuplicateReplica", "LeaseClock", "LeaseView", "ReplicaRow"]

log = logging.getLogger("spendscope.collector.lake")

_SETUP = (
    "CREATE TABLE IF NOT EXISTS spendscope_replicas (replica text PRIMARY KEY, instance text NOT NULL, "
    "host text, started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL)",
    "CREATE TABLE IF NOT EXISTS spendscope_lease (name text PRIMARY KEY, holder text NOT NULL, "
    "instance text NOT NULL, term bigint NOT NULL, acquired_at timestamptz NOT NULL, "
    "expires_at timestamptz NOT NULL)",
)


# How long the leader's lease lasts without a renewal; renewed every LEASE_S / 5.
LEASE_S = 15.0


class DuplicateReplica(RuntimeError):
    """Another live process already runs under this replica name."""


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    replica: str
    heartbeat_age_s: float


@dataclass(frozen=True, slots=True)
class LeaseView:
    holder: str | None  # the replica that leads now (None: nobody)
    term: int  # grows by one at each change of holder
    remaining_s: float
    mine: bool  # held by this process


def _q(value: str) -> str:
    """A SQL string literal for PostgreSQL (values are our own names and uuids, quoted anyway)."""
    return "'" + value.replace("'", "''") + "'"


class Control:
    """One DuckDB connection to the catalog database; every call is short and thread-safe."""

    def __init__(
        self, settings: LakeSettings, replica: str, host: str = "", instance: str | None = None
    ) -> None:
        self.settings = settings
        self.replica = replica
        self.instance = instance or uuid.uuid4().hex
        self.host = host
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    # --- connection ------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            con = duckdb.connect(":memory:", config={"threads": 1})
            try:
                load_extensions(con)
                con.execute(f"ATTACH {_q(self.settings.libpq)} AS pgc (TYPE postgres)")
                for sql in _SETUP:
                    con.execute(f"CALL postgres_execute('pgc', {_q(sql)})")
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def _reset(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            except duckdb.Error:
                pass
            self._con = None

    def _run(self, statements: list[str], query: str | None = None) -> list[tuple[Any, ...]]:
        """Execute ``statements`` then ``query`` in PostgreSQL; a broken connection is rebuilt next time."""
        with self._lock:
            try:
                con = self._connect()
                for sql in statements:
                    con.execute(f"CALL postgres_execute('pgc', {_q(sql)})")
                if query is None:
                    return []
                return con.execute(f"SELECT * FROM postgres_query('pgc', {_q(query)})").fetchall()
            except duckdb.Error:
                self._reset()
                raise

    def close(self) -> None:
        with self._lock:
            self._reset()

    # --- replicas ----------------------------------------------------------------------------
    def register(self) -> None:
        """Claim the replica name for this process; :class:`DuplicateReplica` if it is live elsewhere."""
        name, me, stale = _q(self.replica), _q(self.instance), LEASE_S
        rows = self._run(
            [
                "INSERT INTO spendscope_replicas VALUES "
                f"({name}, {me}, {_q(self.host)}, now(), now()) ON CONFLICT (replica) DO UPDATE SET "
                "instance = excluded.instance, host = excluded.host, started_at = now(), "
                "heartbeat_at = now() "
                "WHERE spendscope_replicas.instance = excluded.instance "
                f"OR spendscope_replicas.heartbeat_at < now() - interval '{stale} seconds'"
            ],
            "SELECT instance, host, extract(epoch FROM now() - heartbeat_at)::float8 "
            f"FROM spendscope_replicas WHERE replica = {name}",
        )
        if rows and rows[0][0] != self.instance:
            raise DuplicateReplica(
                f"replica name {self.replica!r} is already in use by a live collector "
                f"(on {rows[0][1] or 'another host'}, heartbeat {float(rows[0][2]):.1f} s ago): "
                f"give each replica its own name ([lake] replica or SPENDSCOPE_REPLICA)"
            )

    def heartbeat(self) -> None:
        rows = self._run(
            [
                "UPDATE spendscope_replicas SET heartbeat_at = now() "
                f"WHERE replica = {_q(self.replica)} AND instance = {_q(self.instance)}"
            ],
            f"SELECT instance FROM spendscope_replicas WHERE replica = {_q(self.replica)}",
        )
        if not rows or rows[0][0] != self.instance:
            # Our row went stale and another process took the name: re-register says who.
            self.register()

    def replicas(self) -> list[ReplicaRow]:
        rows = self._run(
            [],
            "SELECT replica, extract(epoch FROM now() - heartbeat_at)::float8 FROM spendscope_replicas "
            "ORDER BY replica",
        )
        return [ReplicaRow(r[0], float(r[1])) for r in rows]

    def deregister(self) -> None:
        self._run(
            [
                f"DELETE FROM spendscope_replicas WHERE replica = {_q(self.replica)} "
                f"AND instance = {_q(self.instance)}"
            ]
        )

    # --- the lease ------------------------------------------------------------------------------
    def acquire(self) -> LeaseView:
        """Take or renew the lease if it is free or ours; return who holds it now."""
        me, inst, ttl = _q(self.replica), _q(self.instance), LEASE_S
        return self._lease(
            [
                "INSERT INTO spendscope_lease VALUES "
                f"('leader', {me}, {inst}, 1, now(), now() + interval '{ttl} seconds') "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, instance = excluded.instance, "
                "term = CASE WHEN spendscope_lease.instance = excluded.instance "
                "THEN spendscope_lease.term ELSE spendscope_lease.term + 1 END, "
                "acquired_at = CASE WHEN spendscope_lease.instance = excluded.instance "
                "THEN spendscope_lease.acquired_at ELSE now() END, expires_at = excluded.expires_at "
                "WHERE spendscope_lease.instance = excluded.instance OR spendscope_lease.expires_at < now()"
            ]
        )

    def lease(self) -> LeaseView:
        return self._lease([])

    def _lease(self, statements: list[str]) -> LeaseView:
        rows = self._run(
            statements,
            "SELECT holder, instance, term, extract(epoch FROM expires_at - now())::float8 "
            "FROM spendscope_lease WHERE name = 'leader'",
        )
        if not rows:
            return LeaseView(None, 0, 0.0, False)
        holder, instance, term, remaining = rows[0]
        live = float(remaining) > 0
        return LeaseView(
            holder if live else None, int(term), float(remaining), live and instance == self.instance
        )

    def release(self) -> None:
        """Give the lease up at shutdown, so another replica takes over at its next attempt."""
        self._run(
            [
                "UPDATE spendscope_lease SET expires_at = now() - interval '1 second' "
                f"WHERE name = 'leader' AND instance = {_q(self.instance)}"
            ]
        )


class LeaseClock:
    """Local deadline of a held lease, from monotonic time taken before the renewal was sent."""

    def __init__(self, lease_s: float, margin_s: float) -> None:
        self.lease_s = lease_s
        self.margin_s = margin_s
        self._until = 0.0

    def renewed(self, sent_at: float) -> None:
        self._until = sent_at + self.lease_s - self.margin_s

    def lost(self) -> None:
        self._until = 0.0

    @property
    def held(self) -> bool:
        return time.monotonic() < self._until
