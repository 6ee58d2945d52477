"""spendscope.dashboard."""
