"""Altair charts the pages share. Chart data may be float (pixels), shown totals never are."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed

__all__ = ["headroom_chart", "line_chart", "stacked_spend_chart"]


def stacked_spend_chart(df: pd.DataFrame, *, bucket: str) -> Any:
    """Stacked bars of spend per time bucket, one colour per key (model, project, ...)."""
    data = df.assign(cost=pd.to_numeric(df["cost_usd"], errors="coerce").fillna(0.0))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("bucket:T", title="hour (UTC)" if bucket == "hour" else "day (UTC)"),
            y=alt.Y("sum(cost):Q", title="spend (USD)", axis=alt.Axis(format="$,.4~f")),
            color=alt.Color("key:N", title=None),
            tooltip=["bucket:T", "key:N", alt.Tooltip("sum(cost):Q", format="$,.4f"), "calls:Q"],
        )
        .properties(height=320)
    )


def line_chart(df: pd.DataFrame, *, x: str, y: str, color: str, y_title: str, y_format: str = ",.2f") -> Any:
    return (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:T", title="time (UTC)"),
            y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=y_format)),
            color=alt.Color(f"{color}:N", title=None),
            tooltip=[f"{x}:T", f"{color}:N", alt.Tooltip(f"{y}:Q", format=y_format)],
        )
        .properties(height=280)
    )


def headroom_chart(df: pd.DataFrame, *, kind: str) -> Any:
    """Lowest remaining ``kind`` (requests|tokens) per bucket, with the limit as a dashed line."""
    remaining, limit = f"min_remaining_{kind}", f"limit_{kind}"
    data = df.dropna(subset=[limit])
    base = alt.Chart(data).encode(
        x=alt.X("bucket:T", title="time (UTC)"), color=alt.Color("model:N", title=None)
    )
    used = base.mark_line(point=True).encode(
        y=alt.Y(f"{remaining}:Q", title=f"remaining {kind}"),
        tooltip=["bucket:T", "model:N", f"{remaining}:Q", f"{limit}:Q"],
    )
    cap = base.mark_line(strokeDash=[6, 4], opacity=0.6).encode(y=f"{limit}:Q")
    return (cap + used).properties(height=280)
