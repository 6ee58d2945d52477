"""pytest fixtures for the fake OpenAI server (loaded by tests/conftest.py).

* ``fake_openai_server``: one :class:`FakeOpenAI` for the whole session.
* ``fake_openai``: the same server, reset before each test (ledger, requests, faults, clock, limits).

Importing this module starts nothing; the server starts on first use of a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from spendscope.fake_openai.server import FakeOpenAI

__all__ = ["fake_openai", "fake_openai_server"]


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    from spendscope.fake_openai.server import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    fake_openai_server.reset()
    return fake_openai_server
