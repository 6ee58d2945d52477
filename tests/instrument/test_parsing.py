"""The pure parsers: JSON bodies of any encoding, and the one pass over the response headers."""

from __future__ import annotations

from typing import Any

import pytest

from spendscope import semconv as sc
from spendscope.instrument.parsing import header_attributes, parse_json


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a":1}', {"a": 1}),
        (b' \n{"a": [1, 2]}\r\n', {"a": [1, 2]}),
        ('{"name":"Zoë"}'.encode(), {"name": "Zoë"}),
        (b'\xef\xbb\xbf{"bom":true}', {"bom": True}),
        ('{"wide":"é"}'.encode("utf-16"), {"wide": "é"}),
        (b'{"a":1} trailing', None),
        (b'{"a":', None),
        (b"\xff\xfe\x00", None),
        (b"", None),
    ],
)
def test_parse_json_reads_what_json_loads_reads(body: bytes, expected: Any) -> None:
    assert parse_json(body) == expected


def test_headers_are_read_in_one_pass_whatever_their_case() -> None:
    attrs: dict[str, Any] = {}
    raw = [
        (b"Content-Type", b"text/event-stream; charset=utf-8"),
        (b"content-encoding", b"gzip"),
        (b"X-RateLimit-Limit-Requests", b" 500 "),
        (b"x-ratelimit-remaining-tokens", b"-3"),  # not a count: left out
        (b"x-ratelimit-reset-tokens", b"6m0s"),
        (b"x-ratelimit-reset-requests", b"120ms"),
        (b"x-ratelimit-reset-requests", b"120ms"),  # from the memo the second time
        (b"retry-after", b"2"),
        (b"retry-after-ms", b"1500"),
        (b"openai-processing-ms", b"12.5"),
        (b"x-request-id", b"req_1"),
        (b"date", b"today"),
    ]
    content_type, encoding = header_attributes(raw, attrs)
    assert (content_type, encoding) == ("text/event-stream; charset=utf-8", "gzip")
    assert attrs == {
        sc.RATELIMIT_LIMIT_REQUESTS: 500,
        sc.RATELIMIT_RESET_TOKENS_S: 360.0,
        sc.RATELIMIT_RESET_REQUESTS_S: 0.12,
        sc.RETRY_AFTER_S: 1.5,
        sc.OPENAI_PROCESSING_MS: 12.5,
        sc.OPENAI_REQUEST_ID: "req_1",
    }
