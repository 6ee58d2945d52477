"""The dimensions spend is filtered by: each one's name in the API and the ``calls`` column it reads.

One map for both sides of the HTTP API: the names are what clients (the dashboard's sidebar and spend
page) send, the columns what the collector reads. Clients must not import collector code, so the map
lives here, data only, like :mod:`spendscope.semconv`.
"""

from __future__ import annotations

__all__ = ["DIMENSIONS"]

# API name (a filter ``?user=u-17``, a breakdown ``by=user``, an alert scope) → the calls column.
DIMENSIONS: dict[str, str] = {
    "project": "project",
    "model": "model",
    "service": "service",
    "user": "user_id",
    "feature": "feature",
}
