"""Rate limits: headroom per model over time against the limit, 429s, and the latest headers."""

import pandas as pd
import streamlit as st

from spendscope.dashboard import view
from spendscope.dashboard.charts import headroom_chart, line_chart

st.title("Rate limits")
f = view.filters()
data = view.fetch("/api/v1/insights/headroom", {**f.params(), "bucket": f.bucket})
rows = data["rows"]
if not rows:
    view.show_empty()
    st.stop()

df = pd.DataFrame(rows)
seen = df.dropna(subset=["limit_requests", "limit_tokens"], how="all")
if seen.empty:
    st.info("No rate-limit headers were seen in this range (OpenAI sends them on most responses).")
else:
    st.markdown("**Lowest remaining requests per model** (dashed: the limit)")
    st.altair_chart(headroom_chart(seen, kind="requests"), width="stretch")
    st.markdown("**Lowest remaining tokens per model** (dashed: the limit)")
    st.altair_chart(headroom_chart(seen, kind="tokens"), width="stretch")

st.markdown("**429 responses over time**")
st.altair_chart(
    line_chart(df, x="bucket", y="rate_limited", color="model", y_title="429s", y_format=",d"),
    width="stretch",
)
view.show_table(
    rows,
    name="headroom",
    columns=[
        "bucket",
        "model",
        "calls",
        "rate_limited",
        "limit_requests",
        "min_remaining_requests",
        "requests_headroom_pct",
        "limit_tokens",
        "min_remaining_tokens",
        "tokens_headroom_pct",
    ],
)

st.subheader("Latest headers per model and project")
st.caption("From /api/v1/ratelimits: since the start of the range, without the sidebar's dimension filters.")
latest = view.fetch_rows("/api/v1/ratelimits", {"since": f.range_params()["start"]})
view.show_table(
    latest,
    name="ratelimits-latest",
    columns=[
        "model",
        "project",
        "limit_requests",
        "remaining_requests",
        "limit_tokens",
        "remaining_tokens",
        "observed_at",
        "rate_limited_calls",
    ],
)
