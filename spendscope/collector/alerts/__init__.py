"""Alerts: rules and channels from the collector's config, evaluated every minute.

The component (``alerts/component.py``) takes its ``[alerts]`` section (checked by the config
loader: a bad rule or channel stops the start with file, key and problem), serves the
``/api/v1/alerts`` endpoints, schedules the evaluation tick and starts the delivery worker. See
docs/alerts.md. Nothing happens at import.
"""
