"""Overview: spend today, month to date, projected month, the range at a glance, firing alerts."""

import pandas as pd
import streamlit as st

from spendscope.dashboard import view
from spendscope.dashboard.charts import stacked_spend_chart
from spendscope.dashboard.formatting import format_count, format_percent, format_spend

st.title("Overview")
f = view.filters()
summary = view.fetch("/api/v1/insights/summary", f.params())
today, month, rng = summary["today"], summary["month_to_date"], summary["range"]

c1, c2, c3 = st.columns(3)
c1.metric("Spend today (UTC)", format_spend(today["cost_usd"], today["unpriced_calls"]))
c2.metric("Month to date", format_spend(month["cost_usd"], month["unpriced_calls"]))
c3.metric("Projected month", format_spend(summary["projected_month_usd"], month["unpriced_calls"]))
view.show_unpriced(month["unpriced_calls"], "today's and month-to-date spend")

st.subheader(f"{f.start:%b %d} – {f.end:%b %d}")
calls = rng["calls"] or 0
d1, d2, d3, d4 = st.columns(4)
d1.metric("Spend in range", format_spend(rng["cost_usd"], rng["unpriced_calls"]))
d2.metric("Calls", format_count(calls))
d3.metric("Error rate", format_percent(rng["errors"] / calls if calls else None))
d4.metric("Rate-limited (429)", format_count(rng["rate_limited"]))
view.show_unpriced(rng["unpriced_calls"], "the spend in range")

if not calls:
    view.show_empty()
    st.stop()

series = view.fetch_rows("/api/v1/insights/timeseries", {**f.params(), "bucket": f.bucket, "split": "model"})
st.markdown("**Spend over time by model**")
st.altair_chart(stacked_spend_chart(pd.DataFrame(series), bucket=f.bucket), width="stretch")

try:
    firing = view.client().rows("/api/v1/alerts", {"state": "firing"})
except view.ApiError as err:
    st.caption(f"Alerts unavailable: {err.message}")
else:
    if firing:
        st.error(f"{len(firing)} alert(s) firing — see the Alerts page.")
    else:
        st.success("No alerts firing.")
