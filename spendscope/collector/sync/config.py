"""The ``[sync]`` section of the collector's config file.

The admin key is never read from the file (keys do not belong in files that get committed): it comes
from the variable named by ``admin_key_env``, ``OPENAI_ADMIN_KEY`` by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, StrictStr, StringConstraints

from spendscope.collector.durations import Duration
from spendscope.collector.section import Flag, HttpUrl, Int, Section, Text, setting
from spendscope.collector.validation import validate

__all__ = [
    "ALL_ENDPOINTS",
    "DEFAULT_BASE_URL",
    "DEFAULT_GROUP_BY",
    "Endpoint",
    "SyncSettings",
    "parse_sync_settings",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ADMIN_KEY_ENV = "OPENAI_ADMIN_KEY"

# Usage endpoints (path under /organization/usage/) and "costs", in the order a run reads them.
ALL_ENDPOINTS = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
    "costs",
)
# The group-by keys that make reconciliation possible, per endpoint. user_id is left out on purpose:
# it multiplies the rows by the number of end users and reconciliation never needs it.
DEFAULT_GROUP_BY: Mapping[str, tuple[str, ...]] = {
    "completions": ("project_id", "api_key_id", "model", "batch", "service_tier"),
    "embeddings": ("project_id", "api_key_id", "model"),
    "moderations": ("project_id", "api_key_id", "model"),
    "images": ("project_id", "api_key_id", "model", "size", "source"),
    "audio_speeches": ("project_id", "api_key_id", "model"),
    "audio_transcriptions": ("project_id", "api_key_id", "model"),
    "vector_stores": ("project_id",),
    "code_interpreter_sessions": ("project_id",),
    "file_search_calls": ("project_id", "api_key_id"),
    "web_search_calls": ("project_id", "api_key_id", "model", "context_level"),
    "costs": ("project_id", "line_item", "api_key_id"),
}
_WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}


def _endpoint(name: str) -> str:
    if name not in ALL_ENDPOINTS:
        raise ValueError(f"must be one of {', '.join(ALL_ENDPOINTS)}")
    return name


Endpoint = Annotated[StrictStr, AfterValidator(_endpoint)]
# A run always reads endpoints in the same (canonical) order, whatever the file's order.
Endpoints = Annotated[
    tuple[Endpoint, ...], AfterValidator(lambda v: tuple(e for e in ALL_ENDPOINTS if e in v))
]
GroupBy = Annotated[
    Mapping[Endpoint, tuple[StrictStr, ...]], AfterValidator(lambda v: {**DEFAULT_GROUP_BY, **v})
]
BaseUrl = Annotated[HttpUrl, AfterValidator(lambda url: url.rstrip("/"))]


class SyncSettings(Section):
    """The [Usage and Costs sync](sync.md): it runs only when the admin key is in the environment."""

    enabled: Flag = setting(True, help="`false`: never sync, even with an admin key.")
    interval_s: Duration = setting(3600, key="interval", help="How often the sync runs.")
    on_start: Flag = setting(True, help="Also run once right after the collector starts.")
    base_url: BaseUrl = setting(
        DEFAULT_BASE_URL, env="SPENDSCOPE_OPENAI_BASE_URL", help="The OpenAI API base URL."
    )
    admin_key_env: Text = setting(ADMIN_KEY_ENV, help="The environment variable that holds the admin key.")
    admin_key: Annotated[StrictStr, StringConstraints(strip_whitespace=True)] | None = setting(
        None,
        env=ADMIN_KEY_ENV,
        env_name_key="admin_key_env",
        env_only=True,
        help="The organization admin key (`sk-admin-...`) for the Usage and Costs APIs; "
        "never stored or logged.",
    )
    endpoints: Endpoints = setting(ALL_ENDPOINTS, help="The endpoints to read (default: all of them).")
    bucket_width: Literal["1m", "1h", "1d"] = setting(
        "1d", help="Bucket width of the usage endpoints (the Costs API only has days)."
    )
    backfill_days: Int = setting(30, ge=1, le=366, help="How far back an endpoint's first read goes.")
    trailing_s: Duration = setting(
        48 * 3600, key="trailing", help="How much recent history every run re-reads (OpenAI revises it)."
    )
    timeout_s: Duration = setting(30, key="timeout", help="The timeout of one request.")
    max_retries: Int = setting(
        5, ge=0, le=20, help="Retries per page, for 408/409/429/5xx and connection errors."
    )
    max_backoff_s: Duration = setting(
        60, key="max_backoff", help="The longest wait between retries; it also caps `retry-after`."
    )
    group_by: GroupBy = setting(
        default_factory=lambda: dict(DEFAULT_GROUP_BY),
        help="`[sync.group_by]`: per endpoint, a list of keys that replaces its default group-by keys.",
    )

    @property
    def bucket_seconds(self) -> int:
        return _WIDTHS[self.bucket_width]

    @property
    def configured(self) -> bool:
        return self.enabled and bool(self.admin_key)


def parse_sync_settings(raw: Mapping[str, Any], env: Mapping[str, str]) -> SyncSettings:
    """``[sync]`` of a whole TOML document, alone (the collector's loader reads every section)."""
    return validate(SyncSettings, raw.get("sync", {}), path=None, env=env, prefix=("sync",))
