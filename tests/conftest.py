"""Shared pytest configuration: fixtures for the fake OpenAI server come from its plugin.

``SPENDSCOPE_TEST_WITH_LAKE=1`` runs the suite "with a lake": one PostgreSQL for the session, and
every collector process the tests start becomes a replica of a lake of its own
(``tests/collector/helpers.py``), so the same tests check the same answers through the lake.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["spendscope.fake_openai.pytest_plugin"]


@pytest.fixture(scope="session", autouse=True)
def _with_a_lake() -> Iterator[None]:
    if os.environ.get("SPENDSCOPE_TEST_WITH_LAKE") != "1":
        yield
        return
    from tests.lake.postgres import start_postgres

    server = start_postgres(Path(tempfile.mkdtemp(prefix="ssl-")) / "pg")
    os.environ["SPENDSCOPE_TEST_LAKE_PG"] = server.socket_dir
    try:
        yield
    finally:
        os.environ.pop("SPENDSCOPE_TEST_LAKE_PG", None)
        server.close()
