"""Lake fixtures: one real PostgreSQL per session; each test module makes its own databases."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lake.postgres import Postgres, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    # A short directory: the server's unix socket lives in it, and socket paths are limited to ~100 bytes.
    pgdata = Path(tempfile.mkdtemp(prefix="ssp-")) / "pg"
    server = start_postgres(pgdata)
    try:
        yield server
    finally:
        server.close()
