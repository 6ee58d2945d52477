"""The SDK: one span per OpenAI HTTP attempt, exported over OTLP (placeholder until the SDK lands)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["Instrumentation", "attributes", "instrument", "uninstrument"]


class Instrumentation:
    def uninstrument(self) -> None:
        return None


def instrument(**_: Any) -> Instrumentation:
    return Instrumentation()


def uninstrument() -> None:
    return None


@contextmanager
def attributes(
    *, user: str | None = None, feature: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[None]:
    yield
