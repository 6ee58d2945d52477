"""Pricing: the prices in force and the models seen without a price (their calls are unpriced)."""

import streamlit as st

from spendscope.dashboard import view

st.title("Pricing")
f = view.filters()

st.subheader("Unpriced models")
unpriced = view.fetch_rows("/api/v1/insights/unpriced", f.params())
if unpriced:
    st.warning(
        f"{len(unpriced)} model(s) have calls with no price: their spend is unknown and left out of "
        "totals. Add a `[[pricing.overrides]]` row in the collector config, then reprice."
    )
    view.show_table(unpriced, name="unpriced-models")
else:
    st.success("Every call in this range is priced.")

st.subheader("Prices in force (USD per million tokens)")
data = view.fetch("/api/v1/prices", {"at": f.range_params()["end"]})
rows = data.get("rows", [])
if data.get("version"):
    st.caption(f"Price table version {data['version']}")
preferred = [
    "model",
    "tier",
    "valid_from",
    "valid_to",
    "input_per_mtok",
    "cached_input_per_mtok",
    "output_per_mtok",
]
cols = [c for c in preferred if rows and c in rows[0]]
cols += [c for c in (rows[0] if rows else {}) if c not in cols and not isinstance(rows[0][c], dict | list)]
view.show_table(rows, name="prices", columns=cols)
