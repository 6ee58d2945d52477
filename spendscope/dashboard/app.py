"""The Streamlit app: navigation between the pages and the shared sidebar filters.

``streamlit run spendscope/dashboard/pages/_main.py`` calls :func:`main`; importing this does nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import streamlit as st

from spendscope.client import ApiError
from spendscope.dashboard.filters import STATE_KEY, Filters, default_range
from spendscope.dashboard.view import client
from spendscope.dimensions import DIMENSIONS

__all__ = ["PAGES", "main"]

_PAGES_DIR = Path(__file__).with_name("pages")
# (file, title, icon); the first is the default page.
PAGES: tuple[tuple[str, str, str], ...] = (
    ("overview.py", "Overview", ":material/dashboard:"),
    ("spend.py", "Spend", ":material/payments:"),
    ("reconciliation.py", "Reconciliation", ":material/balance:"),
    ("rate_limits.py", "Rate limits", ":material/speed:"),
    ("reliability.py", "Reliability", ":material/monitor_heart:"),
    ("alerts.py", "Alerts", ":material/notifications:"),
    ("pricing.py", "Pricing", ":material/sell:"),
)


def _options(start: date, end: date) -> dict[str, list[str]]:
    """Values seen in the range per dimension; empty when the collector cannot be read (pages say why)."""
    probe = Filters(start, end)
    try:
        rows = client().rows("/api/v1/insights/dimensions", probe.range_params())
    except ApiError:
        return {}
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(str(r.get("dimension")), []).append(str(r.get("value")))
    return out


def _sidebar() -> None:
    today = datetime.now(UTC).date()
    st.sidebar.header("Filters")
    picked = st.sidebar.date_input(
        "Date range (UTC)", value=default_range(today), key="range", max_value=today
    )
    # While a range is being picked the widget holds one date; treat it as a one-day range.
    days = [d for d in (picked if isinstance(picked, tuple) else (picked,)) if isinstance(d, date)]
    start, end = (days[0], days[-1]) if days else default_range(today)
    options = _options(start, end)
    selected: dict[str, tuple[str, ...]] = {}
    for dim in DIMENSIONS:
        chosen = st.sidebar.multiselect(dim.capitalize(), options.get(dim, []), key=f"filter-{dim}")
        if chosen:
            selected[dim] = tuple(chosen)
    st.session_state[STATE_KEY] = Filters(start, end, selected)
    st.sidebar.caption(f"Collector: {client().base_url}")


def main() -> None:
    st.set_page_config(page_title="spendscope", page_icon=":material/query_stats:", layout="wide")
    pages = [
        st.Page(str(_PAGES_DIR / f), title=t, icon=i, default=n == 0) for n, (f, t, i) in enumerate(PAGES)
    ]
    nav = st.navigation(pages)
    _sidebar()
    nav.run()
