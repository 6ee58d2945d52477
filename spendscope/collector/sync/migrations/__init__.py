"""The sync's numbered SQL migrations (numbers are one sequence across components)."""
