"""Spend: where the money goes (project, model, service, user, feature, tag), savings, CSV export."""

import pandas as pd
import streamlit as st

from spendscope.dashboard import view
from spendscope.dashboard.charts import stacked_spend_chart
from spendscope.dashboard.formatting import format_money
from spendscope.dimensions import DIMENSIONS

st.title("Spend")
f = view.filters()
by = (
    st.segmented_control(
        "Break down by",
        [*DIMENSIONS, "tag", "service_tier"],
        default="model",
        key="spend-by",
    )
    or "model"
)

data = view.fetch("/api/v1/insights/breakdown", {**f.params(), "by": by})
rows = data["rows"]
if not rows:
    view.show_empty()
    st.stop()

total = view.sum_money(r["cost_usd"] for r in rows) if by != "tag" else None
unpriced = sum(r["unpriced_calls"] or 0 for r in rows)
if total is not None:
    st.metric("Total spend", format_money(total, unpriced="$0.00"))
view.show_unpriced(unpriced if by != "tag" else None, "this total")
if by == "tag":
    st.caption("Calls with several tags count once per tag; calls without tags are not listed.")

if by != "tag":
    series = view.fetch_rows("/api/v1/insights/timeseries", {**f.params(), "bucket": f.bucket, "split": by})
    st.altair_chart(stacked_spend_chart(pd.DataFrame(series), bucket=f.bucket), width="stretch")

view.show_table(
    rows,
    name=f"spend-by-{by}",
    columns=[
        "key",
        "cost_usd",
        "calls",
        "errors",
        "unpriced_calls",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_tokens",
    ],
)

st.subheader("What caching and batch saved")
sav = view.fetch("/api/v1/insights/savings", f.params())
t = sav["totals"]
s1, s2, s3 = st.columns(3)
s1.metric("Saved by prompt caching", format_money(t["cache_savings_usd"]))
s2.metric("Saved by the Batch API", format_money(t["batch_savings_usd"]))
s3.metric("Spent on batch", format_money(t["batch_cost_usd"]))
st.caption("Savings compare with what the same tokens cost uncached and at standard (non-batch) prices.")
view.show_table(
    sav["rows"],
    name="savings",
    columns=[
        "model",
        "cache_savings_usd",
        "cached_input_tokens",
        "batch_savings_usd",
        "batch_cost_usd",
        "batch_calls",
        "calls",
        "unpriced_savings",
    ],
)
