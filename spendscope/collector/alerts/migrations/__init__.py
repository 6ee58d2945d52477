"""The alerts' numbered SQL migrations (numbers are one sequence across components)."""
