"""The core's numbered SQL migrations (calls, rejected spans, rollups, prices)."""
