"""Reconciliation: tracked spend (from spans) against the bill (OpenAI Costs API)."""

import streamlit as st

from spendscope.dashboard import view
from spendscope.dashboard.formatting import format_money, format_percent, parse_money

st.title("Reconciliation")
st.caption(
    "Tracked spend comes from instrumented calls; billed spend from the OpenAI Costs API sync. "
    "The capture rate says how much of the bill the instrumented apps explain."
)
f = view.filters()
if f.active:
    st.info("The bill has no per-user or feature split: only the date range applies on this page.")
group = st.segmented_control("Group by", ["day", "project", "model"], default="day", key="recon-by") or "day"
data = view.fetch("/api/v1/reconciliation", {**f.range_params(), "group_by": group})
rows = data.get("rows", [])
totals = data.get("totals") or {}

c1, c2, c3 = st.columns(3)
c1.metric("Tracked", format_money(totals.get("tracked_usd"), unpriced="$0.00"))
c2.metric("Billed", format_money(totals.get("billed_usd"), unpriced="—"))
c3.metric("Capture rate", format_percent(totals.get("capture_rate")))
view.show_unpriced(sum(r.get("unpriced_calls") or 0 for r in rows), "tracked spend")
if group == "model":
    st.caption(
        "The Costs API has no model split: billed is empty by model; the estimate prices Usage API tokens."
    )
billed = parse_money(totals.get("billed_usd"))
if not billed:
    st.info(
        "No billed spend to compare with yet. Set `OPENAI_ADMIN_KEY` for the collector so it syncs the "
        "Usage and Costs APIs, or run `spendscope sync`."
    )
if not rows:
    view.show_empty()
    st.stop()
cols = [
    group,
    "tracked_usd",
    "billed_usd",
    "capture_rate",
    "untracked_usd",
    "estimated_usd",
    "calls",
    "unpriced_calls",
]
cols += [k for k in rows[0] if k not in cols]
view.show_table(rows, name=f"reconciliation-by-{group}", columns=cols)
