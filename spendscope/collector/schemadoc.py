"""The ``calls`` columns and the span attributes that fill them, as a Markdown table, from the spec."""

from __future__ import annotations

from spendscope.collector.schema import COLUMNS, MAX_TAGS, MAX_TEXT, MAX_TOKENS

__all__ = ["reference"]

_FROM = {"price": "the pricer", "insert": "computed when stored"}
_SPAN_FIELDS = {
    "trace_id": "the span's trace id",
    "span_id": "the span's id",
    "start_time": "the span's start",
    "end_time": "the span's end",
    "service": "the resource's `service.name`",
    "span_name": "the span's name",
}


def reference() -> str:
    rows = ["| column | type | filled from, first present wins | roles | notes |", "|---|---|---|---|---|"]
    for c in COLUMNS:
        if c.attributes:
            source = ", ".join(f"`{a}`" for a in c.attributes)
        elif c.name in _SPAN_FIELDS:
            source = _SPAN_FIELDS[c.name]
        elif c.origin in _FROM:
            source = _FROM[c.origin]
        else:
            source = "derived (see notes)"
        roles = ", ".join(
            r for r, on in (("token", c.token), ("dimension", c.dimension), ("money", c.money)) if on
        )
        notes = c.doc.replace("|", "\\|")
        rows.append(
            f"| `{c.name}` | {c.sql_type}{' NOT NULL' if c.not_null else ''} | {source} | {roles} | {notes} |"
        )
    limits = (
        f"Limits: a text value is at most {MAX_TEXT} bytes of valid UTF-8, a span has at most {MAX_TAGS} "
        f"tags, a token count is below {MAX_TOKENS:,} (2^32) and any other count below 2^62, and "
        "numbers are finite. A span over a limit is rejected as a whole, with the reason."
    )
    return "\n".join([*rows, "", limits, ""])
