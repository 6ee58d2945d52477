"""Reliability: error rate over time, errors by type, latency and time-to-first-chunk percentiles."""

import pandas as pd
import streamlit as st

from spendscope.dashboard import view
from spendscope.dashboard.charts import line_chart
from spendscope.dashboard.formatting import format_count, format_percent

st.title("Reliability")
f = view.filters()
rate_rows = view.fetch_rows("/api/v1/insights/error_rate", {**f.params(), "bucket": f.bucket})
if not rate_rows:
    view.show_empty()
    st.stop()

calls = sum(r["calls"] for r in rate_rows)
errors = sum(r["errors"] for r in rate_rows)
c1, c2, c3 = st.columns(3)
c1.metric("Calls", format_count(calls))
c2.metric("Errors", format_count(errors))
c3.metric("Error rate", format_percent(errors / calls if calls else None))

rate_df = pd.DataFrame(rate_rows).assign(series="error rate")
st.markdown("**Error rate over time**")
st.altair_chart(
    line_chart(rate_df, x="bucket", y="error_rate", color="series", y_title="error rate", y_format=".1%"),
    width="stretch",
)

st.subheader("Errors by type")
view.show_table(
    view.fetch_rows("/api/v1/insights/errors", f.params()),
    name="errors-by-type",
    columns=["error_type", "status_code", "errors", "share_of_calls", "first_seen", "last_seen"],
)

st.subheader("Latency percentiles (successful calls)")
lat_doc = view.fetch("/api/v1/insights/latency", {**f.params(), "by": "model"})
lat = list(lat_doc.get("rows", []))
if lat_doc.get("approximate"):
    st.caption("From daily latency histograms: each percentile is within about 2.2% of the exact value.")
view.show_table(
    lat,
    name="latency-by-model",
    columns=["key", "calls", "p50_s", "p95_s", "p99_s", "ttfc_p50_s", "ttfc_p95_s", "ttfc_p99_s"],
)
series = view.fetch_rows("/api/v1/insights/latency", {**f.params(), "by": "model", "bucket": f.bucket})
if series:
    long = pd.DataFrame(series).melt(
        id_vars=["bucket", "key"], value_vars=["p50_s", "p95_s", "p99_s"], var_name="pct", value_name="s"
    )
    long["series"] = long["key"].astype(str) + " " + long["pct"].str.replace("_s", "")
    st.markdown("**Latency percentiles over time**")
    st.altair_chart(
        line_chart(long.dropna(subset=["s"]), x="bucket", y="s", color="series", y_title="seconds"),
        width="stretch",
    )
    ttfc = pd.DataFrame(series).dropna(subset=["ttfc_p50_s"])
    if not ttfc.empty:
        st.markdown("**Time to first chunk, p50 (streams)**")
        st.altair_chart(
            line_chart(ttfc, x="bucket", y="ttfc_p50_s", color="key", y_title="seconds"), width="stretch"
        )
