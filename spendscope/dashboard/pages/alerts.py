"""Alerts: what is firing now, and the recent history."""

import streamlit as st

from spendscope.dashboard import view

COLUMNS = [
    "rule",
    "severity",
    "state",
    "message",
    "value",
    "threshold",
    "scope_key",
    "started_at",
    "resolved_at",
    "last_notified_at",
    "delivered",
    "failed",
    "last_error",
    "silenced",
]


def _columns(rows):
    """The known columns first, then any other flat ones (nested values do not fit a table cell)."""
    if not rows:
        return []
    cols = [c for c in COLUMNS if c in rows[0]]
    return cols + [c for c, v in rows[0].items() if c not in cols and not isinstance(v, dict | list)]


st.title("Alerts")
firing = view.fetch_rows("/api/v1/alerts", {"state": "firing"})
if firing:
    st.error(f"{len(firing)} alert(s) firing")
else:
    st.success("No alerts firing.")
view.show_table(firing, name="alerts-firing", columns=_columns(firing))

st.subheader("All alerts")
every = view.fetch_rows("/api/v1/alerts", {"state": "all"})
view.show_table(every, name="alerts-all", columns=_columns(every))
st.caption("Rules and channels live in the collector's config file; `spendscope alerts test` sends a test.")
