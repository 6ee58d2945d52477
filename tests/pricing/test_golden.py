"""Golden cases computed by hand from OpenAI's published prices (USD per 1M tokens).

Each expected value is written out as the arithmetic it comes from, so a reviewer can redo it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from spendscope.pricing import PriceTable, Usage, price_usage

M = Decimal(1_000_000)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def cost(
    model: str, usage: Usage, at: datetime = NOV, tier: str | None = None, batch: bool = False
) -> Decimal:
    priced = price_usage(
        PriceTable.default(), model=model, at=at, usage=usage, service_tier=tier, batch=batch
    )
    assert priced.status == "priced", priced.reason
    assert priced.cost is not None
    assert sum(priced.breakdown.values(), Decimal(0)) == priced.cost
    return priced.cost


def d(text: str) -> Decimal:
    return Decimal(text)


# --- text models, every family --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "inp", "out"),
    [
        ("gpt-5", "1.25", "10"),
        ("gpt-5-mini", "0.25", "2"),
        ("gpt-5-nano", "0.05", "0.4"),
        ("gpt-5-pro", "15", "120"),
        ("gpt-5.1", "1.25", "10"),
        ("gpt-5.2", "1.75", "14"),
        ("gpt-5.4", "2.5", "15"),
        ("gpt-5.4-mini", "0.75", "4.5"),
        ("gpt-5.4-nano", "0.2", "1.25"),
        ("gpt-5.5", "5", "30"),
        ("gpt-5.6-sol", "4", "20"),
        ("gpt-5.6-terra", "2", "12"),
        ("gpt-5.6-luna", "0.2", "1.2"),
        ("gpt-6-sol", "2", "10"),
        ("gpt-4.1", "2", "8"),
        ("gpt-4.1-mini", "0.4", "1.6"),
        ("gpt-4.1-nano", "0.1", "0.4"),
        ("gpt-4o", "2.5", "10"),
        ("gpt-4o-mini", "0.15", "0.6"),
        ("o1", "15", "60"),
        ("o3", "2", "8"),
        ("o3-mini", "1.1", "4.4"),
        ("o4-mini", "1.1", "4.4"),
        ("o3-pro", "20", "80"),
        ("gpt-4-turbo", "10", "30"),
        ("gpt-4", "30", "60"),
        ("gpt-3.5-turbo", "0.5", "1.5"),
    ],
)
def test_standard_text_prices(model: str, inp: str, out: str) -> None:
    # 100K prompt tokens stay under every long-context threshold (272K).
    assert cost(model, Usage(input_tokens=100_000, output_tokens=1_000_000)) == d(inp) / 10 + d(out)


def test_cached_input_and_reasoning_gpt_5() -> None:
    u = Usage(input_tokens=10_000, cached_input_tokens=4_000, output_tokens=2_000, reasoning_tokens=1_500)
    priced = price_usage(PriceTable.default(), model="gpt-5-2025-08-07", at=NOV, usage=u)
    # 6,000 uncached x 1.25 + 4,000 cached x 0.125 + 2,000 output (reasoning included) x 10
    assert priced.cost == (6_000 * d("1.25") + 4_000 * d("0.125") + 2_000 * d("10")) / M == d("0.028")
    assert priced.breakdown == {"input": d("0.0075"), "cached_input": d("0.0005"), "output": d("0.02")}
    assert priced.reasoning_cost == 1_500 * d("10") / M  # a share of output, not added again


def test_cache_writes_gpt_5_6_sol() -> None:
    u = Usage(
        input_tokens=10_000, cached_input_tokens=2_000, cache_write_input_tokens=4_000, output_tokens=1_000
    )
    # 4,000 uncached x 4 + 2,000 cached x 0.4 + 4,000 written x 5 (1.25x input) + 1,000 out x 20
    expected = (4_000 * d("4") + 2_000 * d("0.4") + 4_000 * d("5") + 1_000 * d("20")) / M
    assert cost("gpt-5.6-sol", u) == expected == d("0.0568")


def test_model_without_cache_write_price_bills_writes_at_input_rate() -> None:
    u = Usage(input_tokens=1_000, cache_write_input_tokens=1_000)
    assert cost("gpt-4o", u) == 1_000 * d("2.5") / M


# --- service tiers and batch --------------------------------------------------------------------


def test_flex_priority_fast_and_batch_gpt_5_mini() -> None:
    u = Usage(input_tokens=1_000_000, cached_input_tokens=200_000, output_tokens=100_000)
    standard = (800_000 * d("0.25") + 200_000 * d("0.025") + 100_000 * d("2")) / M
    assert cost("gpt-5-mini", u, tier="default") == standard
    assert cost("gpt-5-mini", u, tier="auto") == standard
    assert cost("gpt-5-mini", u, tier="scale") == standard
    assert cost("gpt-5-mini", u, tier="flex") == (800_000 * d("0.125") + 200_000 * d("0.0125") + 100_000) / M
    priority = (800_000 * d("0.45") + 200_000 * d("0.045") + 100_000 * d("3.6")) / M
    assert cost("gpt-5-mini", u, tier="priority") == priority
    assert cost("gpt-5-mini", u, tier="fast") == priority  # fast is reported as priority
    assert cost("gpt-5-mini", u, tier="default", batch=True) == standard / 2


def test_batch_gpt_4o_is_half() -> None:
    u = Usage(input_tokens=2_000_000, output_tokens=1_000_000)
    assert cost("gpt-4o", u, batch=True) == 2 * d("1.25") + d("5") == cost("gpt-4o", u) / 2


def test_batch_embeddings() -> None:
    u = Usage(input_tokens=1_000_000)
    assert cost("text-embedding-3-small", u) == d("0.02")
    assert cost("text-embedding-3-small", u, batch=True) == d("0.01")
    assert cost("text-embedding-3-large", u) == d("0.13")
    assert cost("text-embedding-ada-002", u) == d("0.1")


def test_tier_without_a_row_is_unpriced_not_standard() -> None:
    table = PriceTable.default()
    u = Usage(input_tokens=100, output_tokens=100)
    priced = price_usage(table, model="gpt-5-nano", at=NOV, usage=u, service_tier="priority")
    assert (priced.status, priced.cost) == ("unpriced", None)
    assert "priority" in (priced.reason or "")
    batch = price_usage(table, model="gpt-4o-search-preview", at=NOV, usage=u, batch=True)
    assert batch.status == "unpriced"


def test_unknown_tier_prices_as_default_with_a_note() -> None:
    u = Usage(input_tokens=1_000_000)
    priced = price_usage(
        PriceTable.default(), model="gpt-4o", at=NOV, usage=u, service_tier="incentivized-tier"
    )
    assert priced.cost == d("2.5")
    assert "incentivized-tier" in (priced.reason or "")


# --- long context --------------------------------------------------------------------------------


def test_long_context_cliff_gpt_5_4() -> None:
    over = Usage(input_tokens=300_000, cached_input_tokens=100_000, output_tokens=10_000)
    priced = price_usage(PriceTable.default(), model="gpt-5.4", at=NOV, usage=over)
    assert priced.long_context
    # Over 272K prompt tokens the whole call bills at 2x input/cached and 1.5x output.
    assert priced.cost == (200_000 * d("5") + 100_000 * d("0.5") + 10_000 * d("22.5")) / M == d("1.275")
    at_threshold = Usage(input_tokens=272_000, output_tokens=10_000)
    assert cost("gpt-5.4", at_threshold) == (272_000 * d("2.5") + 10_000 * d("15")) / M


def test_long_context_with_cache_writes_gpt_5_6_luna() -> None:
    u = Usage(input_tokens=400_000, cache_write_input_tokens=100_000, output_tokens=1_000)
    expected = (300_000 * d("0.4") + 100_000 * d("0.5") + 1_000 * d("1.8")) / M
    assert cost("gpt-5.6-luna", u) == expected


# --- price changes and effective dating ---------------------------------------------------------


def test_call_across_the_o3_price_cut() -> None:
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    cut = datetime(2025, 6, 10, tzinfo=UTC)
    before = price_usage(PriceTable.default(), model="o3-2025-04-16", at=cut - timedelta(seconds=1), usage=u)
    after = price_usage(PriceTable.default(), model="o3-2025-04-16", at=cut, usage=u)
    assert before.cost == d("10") + d("40")
    assert after.cost == d("2") + d("8")
    assert before.price_id == "openai:o3:2025-04-16:default"
    assert after.price_id == "openai:o3:2025-06-10:default"
    # The day boundary is UTC: 01:00 at +02:00 on the 10th is still the 9th in UTC.
    local = datetime(2025, 6, 10, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert cost("o3", u, at=local) == d("50")


def test_gpt_5_6_sol_price_cut_keeps_old_calls_at_old_price() -> None:
    u = Usage(input_tokens=100_000, output_tokens=1_000_000)
    assert cost("gpt-5.6-sol", u, at=datetime(2026, 8, 20, 23, 59, tzinfo=UTC)) == d("0.5") + d("30")
    assert cost("gpt-5.6-sol", u, at=datetime(2026, 8, 21, tzinfo=UTC)) == d("0.4") + d("20")


def test_gpt_4o_alias_history_and_snapshots() -> None:
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("gpt-4o", u, at=datetime(2024, 6, 1, tzinfo=UTC)) == d("20")  # alias → 2024-05-13 at $5/$15
    assert cost("gpt-4o-2024-08-06", u, at=datetime(2024, 9, 1, tzinfo=UTC)) == d("12.5")
    assert cost("gpt-4o-2024-11-20", u) == d("12.5")  # resolves to the family
    assert cost("gpt-4o-2024-05-13", u) == d("20")  # own row: the snapshot kept its price


def test_before_the_first_row_is_unpriced() -> None:
    priced = price_usage(
        PriceTable.default(), model="gpt-5", at=datetime(2025, 1, 1, tzinfo=UTC), usage=Usage(input_tokens=5)
    )
    assert priced.status == "unpriced"
    assert priced.matched_model == "gpt-5"


# --- audio, images, speech, transcription -------------------------------------------------------


def test_realtime_audio_tokens_are_a_subset_of_tokens() -> None:
    u = Usage(input_tokens=1_000, input_audio_tokens=600, output_tokens=500, output_audio_tokens=400)
    # 400 text in x 0.6 + 600 audio in x 10 + 100 text out x 2.4 + 400 audio out x 20
    expected = (400 * d("0.6") + 600 * d("10") + 100 * d("2.4") + 400 * d("20")) / M
    assert cost("gpt-4o-mini-realtime-preview-2024-12-17", u) == expected == d("0.01448")


def test_cached_audio_gpt_realtime() -> None:
    u = Usage(
        input_tokens=1_000, cached_input_tokens=500, cached_input_audio_tokens=300, input_audio_tokens=800
    )
    # cached: 200 text x 0.4 + 300 audio x 0.4; uncached: 500 audio x 32, 0 text
    assert cost("gpt-realtime", u) == (200 * d("0.4") + 300 * d("0.4") + 500 * d("32")) / M


def test_audio_launch_prices_of_the_2024_10_01_snapshot() -> None:
    u = Usage(input_tokens=1_000_000, input_audio_tokens=1_000_000)
    assert cost("gpt-4o-realtime-preview-2024-10-01", u) == d("100")
    assert cost("gpt-4o-realtime-preview-2024-12-17", u) == d("40")
    assert cost("gpt-4o-audio-preview-2025-06-03", u) == d("40")


def test_audio_without_an_audio_price_is_unpriced() -> None:
    u = Usage(input_tokens=100, input_audio_tokens=100)
    priced = price_usage(PriceTable.default(), model="gpt-4o", at=NOV, usage=u)
    assert priced.status == "unpriced"
    assert "input_audio_per_mtok" in (priced.reason or "")


def test_transcription_and_speech() -> None:
    u = Usage(input_tokens=1_100, input_audio_tokens=1_000, output_tokens=200)
    assert cost("gpt-4o-transcribe", u) == (100 * d("2.5") + 1_000 * d("6") + 200 * d("10")) / M
    assert cost("whisper-1", Usage(seconds=90)) == d("0.009")  # $0.006 per minute
    assert cost("tts-1", Usage(characters=1_000)) == d("0.015")  # $15 per 1M characters
    assert cost("tts-1-hd", Usage(characters=1_000)) == d("0.03")
    tts = Usage(input_tokens=1_000, output_tokens=2_000, output_audio_tokens=2_000)
    assert cost("gpt-4o-mini-tts", tts) == (1_000 * d("0.6") + 2_000 * d("12")) / M


def test_images_per_unit_and_per_token() -> None:
    assert cost("dall-e-3", Usage(images=1)) == d("0.04")  # API default: standard 1024x1024
    assert cost("dall-e-3", Usage(images=2, image_size="1024x1792", image_quality="hd")) == d("0.24")
    assert cost("dall-e-2", Usage(images=3, image_size="256x256")) == 3 * d("0.016")
    odd = price_usage(PriceTable.default(), model="dall-e-3", at=NOV, usage=Usage(images=1, image_size="9x9"))
    assert odd.status == "unpriced"
    u = Usage(input_tokens=300, input_image_tokens=200, output_tokens=1_000, output_image_tokens=1_000)
    assert cost("gpt-image-1", u) == (100 * d("5") + 200 * d("10") + 1_000 * d("40")) / M


def test_moderation_is_priced_at_zero_not_unpriced() -> None:
    priced = price_usage(
        PriceTable.default(), model="omni-moderation-2024-09-26", at=NOV, usage=Usage(input_tokens=500)
    )
    assert (priced.status, priced.cost) == ("priced", Decimal(0))


# --- legacy, fine-tunes, aliases ----------------------------------------------------------------


def test_legacy_snapshots() -> None:
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("gpt-3.5-turbo-0125", u) == d("2")
    assert cost("gpt-3.5-turbo-0613", u) == d("3.5")
    assert cost("gpt-3.5-turbo-1106", u) == d("3")
    assert cost("gpt-3.5-turbo-16k-0613", u) == d("7")
    assert cost("gpt-4-0613", u) == d("90")
    assert cost("gpt-4-32k-0314", u) == d("180")
    assert cost("gpt-4-1106-preview", u) == d("40")
    assert cost("gpt-35-turbo", u) == d("2")  # Azure spelling


def test_fine_tuned_models_price_at_fine_tune_rates() -> None:
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("ft:gpt-4o-mini-2024-07-18:acme::9abc", u) == d("0.3") + d("1.2")
    assert cost("ft:gpt-4o-2024-08-06:acme:team:xyz", u) == d("3.75") + d("15")


def test_inconsistent_counts_are_clamped_not_negative() -> None:
    u = Usage(input_tokens=100, cached_input_tokens=500, output_tokens=10, reasoning_tokens=50)
    priced = price_usage(PriceTable.default(), model="gpt-4o", at=NOV, usage=u)
    assert priced.cost == (100 * d("1.25") + 10 * d("10")) / M
    assert "clamped" in (priced.reason or "")
