"""One disagreement between our price table and another source: what ``check`` and ``import`` list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from spendscope.pricing.model import Tier

__all__ = ["MISSING", "Disagreement"]

MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Disagreement:
    model: str  # our model name, or the source's when we have no such model (or it names a snapshot)
    tier: Tier
    field: str  # a price field, "long_context:<field>", "token_prices", "model" or "tier"
    ours: str
    theirs: str
    at: date
    reviewed: str | None = None  # the exception's reason when reviewed
    source: str = "genai-prices"  # the source compared with: "genai-prices" or "litellm"
    matched: str | None = None  # our model the source's name resolves to, when it differs

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model": self.model,
            "matched": self.matched,
            "tier": self.tier,
            "field": self.field,
            "ours": self.ours,
            "theirs": self.theirs,
            "at": self.at.isoformat(),
            "reviewed": self.reviewed is not None,
            "reason": self.reviewed,
        }
