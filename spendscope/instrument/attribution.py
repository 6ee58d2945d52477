"""``spendscope.attributes(...)``: who or what a call was for, without touching the call sites."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

__all__ = ["Attribution", "attributes", "current"]


class Attribution(NamedTuple):
    user: str | None
    feature: str | None
    tags: Mapping[str, str]


_CURRENT: ContextVar[Attribution | None] = ContextVar("spendscope_attribution", default=None)


def current() -> Attribution | None:
    return _CURRENT.get()


@contextmanager
def attributes(
    *, user: str | None = None, feature: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[Attribution]:
    """Attribute every OpenAI call made inside the block (context-local: follows ``await`` and tasks).

    Nested blocks inherit what they do not override; tags merge.
    """
    outer = _CURRENT.get()
    merged_tags: dict[str, str] = dict(outer.tags) if outer else {}
    if tags:
        merged_tags.update({str(k): str(v) for k, v in tags.items()})
    value = Attribution(
        user if user is not None else (outer.user if outer else None),
        feature if feature is not None else (outer.feature if outer else None),
        merged_tags,
    )
    token = _CURRENT.set(value)
    try:
        yield value
    finally:
        _CURRENT.reset(token)
