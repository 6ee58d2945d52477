"""Cross-check against genai-prices: every disagreement is fixed or reviewed, and no review is stale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from spendscope.pricing import PriceTable
from spendscope.pricing.check import (
    check_all,
    compare_with_genai_prices,
    compare_with_litellm,
    load_exceptions,
)
from tests.pricing.foreign_data import LITELLM_VERSION, litellm_json, litellm_wheel

# A fixed date keeps the test reproducible; genai-prices' data is bundled with its pinned version,
# LiteLLM's comes from its pinned wheel.
AT = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def found() -> list:  # type: ignore[type-arg]
    return check_all(PriceTable.default(), litellm_json(), litellm_origin=f"litellm {LITELLM_VERSION}", at=AT)


def test_every_disagreement_is_fixed_or_reviewed(found: list) -> None:  # type: ignore[type-arg]
    unreviewed = [
        (d.model, d.tier, d.field, d.ours, d.theirs, str(d.at)) for d in found if d.reviewed is None
    ]
    assert unreviewed == []


def test_no_reviewed_exception_is_stale(found: list) -> None:  # type: ignore[type-arg]
    used = {(d.source, d.model, d.tier, d.field, d.ours, d.theirs) for d in found}
    stale = [
        (e.source, e.model, e.tier, e.field)
        for e in load_exceptions()
        if (e.source, e.model, e.tier, e.field, e.ours, e.theirs) not in used
    ]
    assert stale == [], "exceptions that no longer match a disagreement: remove or re-review them"


def test_current_text_models_agree_on_standard_prices(found: list) -> None:  # type: ignore[type-arg]
    current = {
        "gpt-5",
        "gpt-5-mini",
        "gpt-5.4",
        "gpt-5.5",
        "gpt-5.6-sol",
        "gpt-6-sol",
        "gpt-4.1",
        "gpt-4o-mini",
    }
    assert not [d for d in found if d.model in current and d.tier in ("default", "flex", "priority")]


@pytest.mark.parametrize("source", ["genai-prices", "litellm"])
def test_a_changed_price_surfaces_as_unreviewed(source: str) -> None:
    table = PriceTable.default().with_overrides(
        [
            {
                "model": "gpt-4.1",
                "valid_from": "2026-11-01",
                "input_per_mtok": 3,
                "cached_input_per_mtok": "0.5",
                "output_per_mtok": 8,
            }
        ]
    )
    if source == "litellm":
        found = compare_with_litellm(table, litellm_json(), origin="x", at=AT)
    else:
        found = compare_with_genai_prices(table, AT)
    diffs = [d for d in found if d.reviewed is None]
    # Cache writes follow the input rate on both sides, so they move with it.
    assert [(d.source, d.model, d.field, d.ours, d.theirs) for d in diffs] == [
        (source, "gpt-4.1", "input_per_mtok", "3", "2"),
        (source, "gpt-4.1", "cache_write_per_mtok", "3", "2"),
    ]


def test_both_sources_are_compared_and_every_exception_names_its_source(found: list) -> None:  # type: ignore[type-arg]
    assert {d.source for d in found} == {"genai-prices", "litellm"}
    assert {e.source for e in load_exceptions()} == {"genai-prices", "litellm"}
    # The one LiteLLM disagreement issue 18 found unreviewed is reviewed now, with its reason.
    search = next(d for d in found if d.source == "litellm" and d.model == "gpt-4o-search-preview")
    assert (search.ours, search.theirs) == ("2.5", "1.25") and search.reviewed
    # Every OpenAI model LiteLLM prices is priced by the reviewed table.
    assert not [d for d in found if d.source == "litellm" and d.field == "model"]


def test_check_command_reads_the_wheel(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.pricing.test_cli import run

    code, text = run(["pricing", "check", "--litellm", str(litellm_wheel()), "--at", AT.isoformat()])
    assert code == 0, text
    assert "0 unreviewed" in text and "litellm=" in text and "genai-prices=" in text
