"""The two foreign price files as their projects ship them, for the import and check tests.

LiteLLM: ``model_prices_and_context_window_backup.json`` read from the litellm wheel that
``make setup`` downloads (pinned by hash, never installed or imported). genai-prices: its wheel
ships the data as Python objects (``genai_prices.data``); :func:`genai_prices_json` writes them in
the JSON form its ``UpdatePrices`` fetches, and checks with genai-prices' own parser that nothing
was lost on the way.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from datetime import date, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["LITELLM_VERSION", "genai_prices_json", "litellm_json", "litellm_wheel"]

REPO = Path(__file__).resolve().parents[2]
LITELLM_VERSION = "1.109.1"
_MEMBER = "litellm/model_prices_and_context_window_backup.json"


def litellm_wheel() -> Path:
    found = sorted((REPO / ".cache" / "litellm").glob(f"litellm-{LITELLM_VERSION}-*.whl"))
    assert found, f"no litellm {LITELLM_VERSION} wheel in .cache/litellm: run `make setup`"
    return found[0]


@cache
def litellm_json() -> bytes:
    with zipfile.ZipFile(litellm_wheel()) as wheel:
        return wheel.read(_MEMBER)


_DEC = re.compile(r'"@dec:([0-9.eE+-]+)@"')


def _plain(value: Any) -> Any:
    from genai_prices import types

    if isinstance(value, Decimal):
        return f"@dec:{value}@"  # written back as a bare JSON number below: exact, as in data.json
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, types.ModelPrice):
        return {k: _plain(v) for k, v in value.__dict__.items() if v is not None and not k.startswith("_")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name, None)
            if f.name.startswith("_") or v is None or not f.init:
                continue
            out[f.name.rstrip("_")] = _plain(v)  # or_/and_ are "or"/"and" in the data
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@cache
def genai_prices_json(provider_ids: tuple[str, ...] = ("openai", "anthropic")) -> bytes:
    from genai_prices import data, types

    providers = [p for p in data.providers if p.id in provider_ids]
    text = _DEC.sub(r"\1", json.dumps([_plain(p) for p in providers], indent=1))
    # Read back the way UpdatePrices.fetch() reads the published file: nothing may be lost.
    assert types._providers_from_raw(json.loads(text)) == providers, "the JSON form lost something"
    return text.encode()
