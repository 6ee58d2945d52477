"""OpenAI organization Usage and Costs sync, and reconciliation against tracked spend.

The component (``sync/component.py``) takes its ``[sync]`` section, serves the sync's endpoints and, when an
admin key is configured, schedules the job. Nothing happens at import.
"""
