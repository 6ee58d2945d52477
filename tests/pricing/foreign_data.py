"""The two foreign price files as their projects ship them, for the import and check tests.

LiteLLM: ``model_prices_and_context_window_backup.json`` read from the litellm wheel that
``make setup`` downloads (pinned by hash, never installed or imported). genai-prices: its wheel
ships the data as Python objects (``genai_prices.data``); :func:`genai_prices_json` has
``pricing check`` write them in the JSON form its ``UpdatePrices`` fetches, and checks with
genai-prices' own parser that nothing was lost on the way.
"""

from __future__ import annotations

import json
import zipfile
from functools import cache
from pathlib import Path

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


@cache
def genai_prices_json(provider_ids: tuple[str, ...] = ("openai", "anthropic")) -> bytes:
    from genai_prices import data, types

    from spendscope.pricing.check import genai_prices_data_json

    text = genai_prices_data_json(provider_ids)
    # Read back the way UpdatePrices.fetch() reads the published file: nothing may be lost.
    providers = [p for p in data.providers if p.id in provider_ids]
    assert types._providers_from_raw(json.loads(text)) == providers, "the JSON form lost something"
    return text
