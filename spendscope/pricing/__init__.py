"""spendscope.pricing."""
