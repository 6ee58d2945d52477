"""Streamlit helpers the pages share: fetching with honest error states, tables with CSV export,
the empty-data guide and the unpriced-calls flag. Pages stay thin scripts over these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
import streamlit as st

from spendscope.client import PAGE_TIMEOUT_S, ApiClient, ApiError, Params, client_from_env
from spendscope.dashboard.filters import STATE_KEY, Filters, default_range
from spendscope.dashboard.formatting import (
    format_count,
    format_money,
    format_percent,
    format_seconds,
    sum_money,
)

__all__ = [
    "INSTRUMENT_HELP",
    "ApiError",
    "client",
    "display_frame",
    "fetch",
    "fetch_rows",
    "filters",
    "show_empty",
    "show_table",
    "show_unpriced",
    "stop_with_error",
    "sum_money",
]

INSTRUMENT_HELP = """\
**No calls recorded in this range yet.** To see data here, instrument an application:

```python
import spendscope
spendscope.instrument()   # exports spans to http://127.0.0.1:4318 by default
```

Point the SDK at this collector with `OTEL_EXPORTER_OTLP_ENDPOINT` if it runs elsewhere, name the
app with `OTEL_SERVICE_NAME`, and attribute calls with
`with spendscope.attributes(user="u-17", feature="search"):`. Then widen the date range on the left.
"""

# Column kind → how its cells are shown; the CSV keeps the raw API values.
_MONEY = ("_usd",)
_PCT = ("rate", "share", "_pct")
_PCT_PREFIX = ("share_",)
_SECONDS = ("_s",)


def client() -> ApiClient:
    return client_from_env(timeout_s=PAGE_TIMEOUT_S)


def filters() -> Filters:
    """The sidebar's filters, or the default range when a page runs without the app shell."""
    value = st.session_state.get(STATE_KEY)
    if isinstance(value, Filters):
        return value
    start, end = default_range(datetime.now(UTC).date())
    return Filters(start, end)


def stop_with_error(err: ApiError) -> NoReturn:
    """Show what went wrong and how to fix it, then end the page run (no traceback)."""
    title = {
        "unreachable": "Collector unreachable",
        "unauthorized": "Access refused by the collector",
        "not_found": "Not available",
        "bad_request": "The collector rejected the query",
    }.get(err.kind, "The collector answered with an error")
    st.error(f"**{title}.** {err.message}")
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises; this satisfies the type checker


def fetch(path: str, params: Params | None = None) -> dict[str, Any]:
    try:
        return client().get(path, params)
    except ApiError as err:
        stop_with_error(err)


def fetch_rows(path: str, params: Params | None = None) -> list[dict[str, Any]]:
    try:
        return client().rows(path, params)
    except ApiError as err:
        stop_with_error(err)


def show_empty() -> None:
    st.info(INSTRUMENT_HELP)


def show_unpriced(unpriced_calls: int | None, where: str = "these totals") -> None:
    """Flag totals that leave out unpriced calls: they are unknown, not free."""
    if unpriced_calls:
        st.warning(
            f"{format_count(unpriced_calls)} unpriced call(s) are not included in {where}: "
            "their model has no price. See the Pricing page."
        )


def _display_value(column: str, value: Any) -> Any:
    if value is None:
        return "unpriced" if column.endswith(_MONEY) else "—"
    if column.endswith(_MONEY):
        return format_money(value)
    if column.endswith(_PCT) or column.startswith(_PCT_PREFIX):
        return format_percent(value)
    if column.endswith(_SECONDS) and isinstance(value, int | float):
        return format_seconds(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return format_count(value)
    return value


def display_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows as a frame of display strings (money as currency, ratios as percent)."""
    cols = list(columns) if columns else list(rows[0].keys()) if rows else []
    return pd.DataFrame([{c: _display_value(c, r.get(c)) for c in cols} for r in rows], columns=cols)


def show_table(rows: Sequence[Mapping[str, Any]], *, name: str, columns: Sequence[str] | None = None) -> None:
    """A formatted table and a button exporting the API's raw values (exact decimals) as CSV."""
    if not rows:
        st.caption("No rows.")
        return
    cols = list(columns) if columns else list(rows[0].keys())
    st.dataframe(display_frame(rows, cols), hide_index=True, width="stretch")
    raw = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    st.download_button(
        f"Download {name} as CSV",
        raw.to_csv(index=False).encode("utf-8"),
        file_name=f"spendscope-{name}.csv",
        mime="text/csv",
        key=f"csv-{name}",
    )
