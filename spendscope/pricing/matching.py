"""How a model name from a span or a Usage bucket finds its row in the price table.

Exact name first, then the dated snapshot stripped to its family, then the alias table. Never a
prefix guess: ``gpt-4o-mini`` must not be priced as ``gpt-4o``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["candidate_names", "match_model", "normalize_model", "strip_snapshot"]

# "-2024-08-06" (current style) and "-0613" (2023 style, MMDD) at the very end of the name. Month and
# day are range-checked so that "-2024" or "-1234" is never taken for a date.
_MM = r"(?:0[1-9]|1[0-2])"
_DD = r"(?:0[1-9]|[12]\d|3[01])"
_SNAPSHOT = re.compile(rf"-(?:20\d\d-{_MM}-{_DD}|{_MM}{_DD})$")
# Gateways and OTel instrumentations often prefix the provider.
_PROVIDER_PREFIXES = ("openai/", "openai:", "azure/")
_MAX_NAME = 256


def normalize_model(name: str) -> str:
    name = name.strip().lower()
    for prefix in _PROVIDER_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name


def strip_snapshot(name: str) -> str | None:
    """``gpt-4o-2024-08-06`` → ``gpt-4o``, ``gpt-4-0613`` → ``gpt-4``; None when there is no date suffix."""
    stripped = _SNAPSHOT.sub("", name)
    return stripped if stripped != name and stripped else None


def _fine_tune_base(name: str) -> str | None:
    """``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` → ``ft:gpt-4o-mini-2024-07-18`` (OpenAI's ft name form)."""
    if not name.startswith("ft:"):
        return None
    base = name[3:].split(":", 1)[0]
    return f"ft:{base}" if base else None


def candidate_names(name: str) -> list[str]:
    """The names tried, in order, before aliases: exact, then the snapshot's family."""
    name = normalize_model(name)
    out = [name]
    base = _fine_tune_base(name)
    if base is not None and base != name:
        out.append(base)
    for n in list(out):
        stripped = strip_snapshot(n)
        if stripped is not None and stripped not in out:
            out.append(stripped)
    return out


def match_model(name: str, known: Callable[[str], bool], aliases: Mapping[str, str]) -> str | None:
    """The table model ``name`` prices as, or None. ``known`` says whether a table model exists."""
    if not name or len(name) > _MAX_NAME:
        return None
    candidates = candidate_names(name)
    for candidate in candidates:
        if known(candidate):
            return candidate
    for candidate in candidates:
        target = aliases.get(candidate)
        if target is not None and known(target):
            return target
    # An alias may name a snapshot too (e.g. an Azure deployment pointing at gpt-4o-2024-08-06).
    for candidate in candidates:
        target = aliases.get(candidate)
        if target is not None:
            for resolved in candidate_names(target):
                if known(resolved):
                    return resolved
    return None
