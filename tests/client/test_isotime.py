"""The client side's one ISO time writer and reader."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest

from spendscope.isotime import format_time, parse_since, parse_time

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_format_time_writes_utc_with_z() -> None:
    assert format_time(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00Z"
    assert (
        format_time(datetime(2026, 3, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-03-01T00:00:00Z"
    )
    assert format_time(datetime(2026, 3, 1, 9, 30, 0, 250000)) == "2026-03-01T09:30:00.250000Z"  # naive: UTC


def test_parse_time_reads_dates_times_and_zones() -> None:
    assert parse_time("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_time(" 2026-03-01T09:00:00Z ") == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert parse_time("2026-03-01T09:00:00+02:00") == datetime(2026, 3, 1, 7, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="'tomorrow' is not an ISO date or time"):
        parse_time("tomorrow")


def test_parse_since_reads_ago_or_iso() -> None:
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_since("2w", NOW) == NOW - timedelta(weeks=2)
    assert parse_since("90 s", NOW) == NOW - timedelta(seconds=90)
    assert parse_since("2026-01-01", NOW) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="use 7d, 24h, 30m or an ISO date/time"):
        parse_since("7y", NOW)
    # argparse prints the message as it is.
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--since", type=parse_since)
    with pytest.raises(argparse.ArgumentError, match="'soon': use 7d"):
        parser.parse_args(["--since", "soon"])
