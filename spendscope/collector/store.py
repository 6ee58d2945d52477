"""The DuckDB file: one owning connection, numbered migrations, and the door to the writer thread.

This process is the only one that opens the file. Reads use :meth:`Store.cursor` (a fresh cursor
on the same database instance, safe from any thread); every write goes through the single writer
thread (:meth:`Store.run_write`), which keeps DuckDB free of write-write conflicts.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb

__all__ = ["MIGRATIONS_PACKAGE", "Store", "WriteExecutor", "list_migrations"]

log = logging.getLogger("spendscope.collector.store")

MIGRATIONS_PACKAGE = "spendscope.collector.migrations"  # the core's; components add their own
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

T = TypeVar("T")


class WriteExecutor(Protocol):
    def submit(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Future[Any]: ...


def list_migrations(packages: Sequence[str] = (MIGRATIONS_PACKAGE,)) -> list[tuple[int, str, str]]:
    """(number, file name, SQL) for every ``NNN_name.sql`` in the packages, in number order.

    The numbers are one sequence across packages (each component keeps its files, the order of
    application is global), so a number may be used once.
    """
    found: list[tuple[int, str, str]] = []
    for package in packages:
        for entry in resources.files(package).iterdir():
            m = _MIGRATION_NAME.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    dupes = sorted({n for n in numbers if numbers.count(n) > 1})
    if dupes:
        raise RuntimeError(f"two migrations share the number(s) {dupes}: renumber one")
    return found


class Store:
    """Owns the DuckDB connection for one database file."""

    def __init__(
        self,
        path: str,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        checkpoint_threshold: str | None = None,
    ) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        if threads is not None:
            config["threads"] = threads
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        if checkpoint_threshold is not None:
            config["checkpoint_threshold"] = checkpoint_threshold
        self._con = duckdb.connect(path, config=config)
        # Days, date_trunc and TIMESTAMPTZ casts all follow the session zone: pin it.
        self._con.execute("SET TimeZone = 'UTC'")
        self._writer: WriteExecutor | None = None
        self._lock = threading.Lock()
        # Prepares every read cursor (the lake points table names at its read views); may refuse.
        self.on_cursor: Callable[[duckdb.DuckDBPyConnection], None] | None = None
        self.closed = False

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The writer's connection: only the writer thread (or startup code) may use it."""
        return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database for reading, from any thread. Close it when done."""
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        if self.on_cursor is not None:
            try:
                self.on_cursor(cur)
            except BaseException:
                cur.close()
                raise
        return cur

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """``fn(cursor)`` with a fresh read cursor (from any thread), closed afterwards."""
        cur = self.cursor()
        try:
            return fn(cur)
        finally:
            cur.close()

    def attach_writer(self, writer: WriteExecutor | None) -> None:
        self._writer = writer

    def run_write(self, fn: Callable[[duckdb.DuckDBPyConnection], T], timeout: float | None = 120.0) -> T:
        """Run ``fn(connection)`` in the writer thread (inline before it starts); return its result."""
        writer = self._writer
        if writer is None:
            with self._lock:
                return fn(self._con)
        fut: Future[T] = writer.submit(fn)
        return fut.result(timeout=timeout)

    def submit_write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        """Like :meth:`run_write` without waiting: the future resolves after the writer ran ``fn``."""
        writer = self._writer
        if writer is not None:
            return writer.submit(fn)
        fut: Future[T] = Future()
        try:
            fut.set_result(self.run_write(fn))
        except BaseException as exc:  # handed to the caller through the future
            fut.set_exception(exc)
        return fut

    def migrate(self, packages: Sequence[str] = (MIGRATIONS_PACKAGE,)) -> list[str]:
        """Apply the migrations of ``packages`` not yet recorded, each in its own transaction, in
        number order; return their names."""
        con = self._con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        done = {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
        applied: list[str] = []
        for number, name, sql in list_migrations(packages):
            if number in done:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, current_timestamp)",
                    [number, name],
                )
                con.execute("COMMIT")
            except Exception as exc:
                con.execute("ROLLBACK")
                raise RuntimeError(f"migration {name} failed: {exc}") from exc
            applied.append(name)
            log.info("applied migration %s", name)
        return applied

    def close(self) -> None:
        """Checkpoint (fold the WAL into the file) and close. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self._con.execute("CHECKPOINT")
            except duckdb.Error as exc:
                log.warning("checkpoint at close failed: %s", exc)
            self._con.close()
