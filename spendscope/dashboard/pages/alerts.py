"""Alerts: what is firing now, and the recent history."""

import streamlit as st

from spendscope.dashboard import view

st.title("Alerts")
firing = view.fetch_rows("/api/v1/alerts", {"state": "firing"})
if firing:
    st.error(f"🔔 {len(firing)} alert(s) firing")
else:
    st.success("No alerts firing.")
view.show_table(firing, name="alerts-firing")

st.subheader("All alerts")
view.show_table(view.fetch_rows("/api/v1/alerts", {"state": "all"}), name="alerts-all")
st.caption("Rules and channels live in the collector's config file (see docs/alerts).")
