"""Pricing: models without a price, where the bill disagrees with the table, prices the bill gave,
and the prices in force."""

import streamlit as st

from spendscope.dashboard import view

st.title("Pricing")
f = view.filters()
span = f.range_params()

st.subheader("Unpriced models")
unpriced = view.fetch_rows("/api/v1/insights/unpriced", f.params())
if unpriced:
    st.warning(
        f"{len(unpriced)} model(s) have calls with no price: their spend is unknown and left out of "
        "totals. Add a `[[pricing.overrides]]` row or an extra price table in the collector config, "
        "then reprice; or let the Usage/Costs sync read the bill, which prices models no table knows."
    )
    view.show_table(unpriced, name="unpriced-models")
else:
    st.success("Every call in this range is priced.")

st.subheader("The bill against the price table")
drift = view.fetch("/api/v1/prices/drift", span)
if drift["rows"]:
    st.warning(
        f"{len(drift['rows'])} price(s) on the bill differ from the price table by more than "
        f"{drift['threshold_pct']:g}% (a negotiated discount, or a price change the table missed). "
        "Calls keep the table's price; an override with your price makes them agree."
    )
    view.show_table(
        [{**r, "drift_rate": r["drift"]} for r in drift["rows"]],  # a fraction, shown as a percentage
        name="price-drift",
        columns=[
            "model",
            "kind",
            "tier",
            "bill_unit_price",
            "table_unit_price",
            "unit",
            "drift_rate",
            "day",
            "days",
            "price_id",
        ],
    )
else:
    st.caption("No price on the bill differs from the table (the sync reads the bill).")

st.subheader("Prices from the bill")
billed = view.fetch_rows("/api/v1/prices/bill", span)
used = [r for r in billed if r["status"] == "prices"]
if used:
    models = sorted({r["model"] for r in used})
    st.info(
        f"Priced from the bill (amount ÷ quantity of its line items): {', '.join(models)}. No price "
        "table knows these models; their calls carry the price origin `bill`."
    )
    view.show_table(
        used,
        name="bill-prices",
        columns=["day", "model", "kind", "tier", "unit_price", "unit", "line_item", "price_id"],
    )
other = [r for r in billed if r["status"] in ("recorded", "ignored")]
if other:
    st.caption("Line items that price no call: recorded as billed, never guessed.")
    view.show_table(
        other,
        name="bill-other",
        columns=["day", "line_item", "amount", "quantity", "quantity_unit", "unit_price", "unit", "reason"],
    )
if not billed:
    st.caption("No bill read yet: the Usage/Costs sync needs an admin key.")

st.subheader("Prices in force (USD per million tokens)")
data = view.fetch("/api/v1/prices", {"at": span["end"]})
rows = data.get("rows", [])
if data.get("version"):
    st.caption(f"Price table version {data['version']}")
preferred = [
    "model",
    "tier",
    "origin",
    "valid_from",
    "valid_to",
    "input_per_mtok",
    "cached_input_per_mtok",
    "output_per_mtok",
]
cols = [c for c in preferred if rows and c in rows[0]]
cols += [c for c in (rows[0] if rows else {}) if c not in cols and not isinstance(rows[0][c], dict | list)]
view.show_table(rows, name="prices", columns=cols)
