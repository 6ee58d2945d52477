"""``spendscope demo``: the whole system on a bundled fake OpenAI, with generated traffic."""
