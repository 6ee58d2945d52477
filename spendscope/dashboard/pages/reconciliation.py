"""Reconciliation: tracked spend (from spans) against the bill (OpenAI Costs API)."""

import streamlit as st

from spendscope.dashboard import view
from spendscope.dashboard.formatting import format_money, format_percent

st.title("Reconciliation")
st.caption(
    "Tracked spend comes from instrumented calls; billed spend from the OpenAI Costs API sync. "
    "The capture rate says how much of the bill the instrumented apps explain."
)
f = view.filters()
if f.active:
    st.info("The bill has no per-model, user or feature split: only the date range applies here.")
group = st.segmented_control("Group by", ["day", "project"], default="day", key="recon-by") or "day"
data = view.fetch("/api/v1/reconciliation", {**f.range_params(), "group_by": group})
rows = data.get("rows", [])
if not rows:
    st.info(
        "No billed spend to compare with yet. Set `OPENAI_ADMIN_KEY` for the collector so it syncs the "
        "Costs API, or run `spendscope sync`."
    )
    st.stop()

tracked = view.sum_money(r.get("tracked_usd") for r in rows)
billed = view.sum_money(r.get("billed_usd") for r in rows)
c1, c2, c3 = st.columns(3)
c1.metric("Tracked", format_money(tracked, unpriced="$0.00"))
c2.metric("Billed", format_money(billed, unpriced="—"))
rate = (tracked / billed) if tracked is not None and billed else None
c3.metric("Capture rate", format_percent(rate))
totals = data.get("totals") or {}
view.show_unpriced(totals.get("unpriced_calls"), "tracked spend")
cols = [group, "tracked_usd", "billed_usd", "capture_rate"]
extra = [k for k in rows[0] if k not in cols]
view.show_table(rows, name=f"reconciliation-by-{group}", columns=cols + extra)
