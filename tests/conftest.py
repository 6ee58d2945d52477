"""Shared pytest configuration: fixtures for the fake OpenAI server come from its plugin."""

pytest_plugins = ["spendscope.fake_openai.pytest_plugin"]
