"""spendscope.collector."""
