"""spendscope.fake_openai."""
