"""Collector test fixtures: one collector subprocess per module where the tests can share it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("starlette")

from tests.collector.helpers import CollectorProcess


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    db = Path(tmp_path_factory.mktemp("collector")) / "spendscope.duckdb"
    proc = CollectorProcess(db).start()
    try:
        yield proc
    finally:
        try:
            proc.terminate()
        finally:
            proc.kill()
