"""The ``[sync]`` section of the collector's TOML file, with environment overrides.

Environment variables win over the file (``SPENDSCOPE_OPENAI_BASE_URL``, and the admin key from
the variable named by ``admin_key_env``, ``OPENAI_ADMIN_KEY`` by default). The admin key itself is
never read from the file: keys do not belong in config files that get committed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spendscope.collector.config import ConfigError

__all__ = [
    "ALL_ENDPOINTS",
    "DEFAULT_BASE_URL",
    "DEFAULT_GROUP_BY",
    "SyncConfigError",
    "SyncSettings",
    "parse_duration",
    "parse_sync_settings",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

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
_KEYS = {
    "enabled",
    "interval",
    "on_start",
    "base_url",
    "admin_key_env",
    "endpoints",
    "bucket_width",
    "backfill_days",
    "trailing",
    "timeout",
    "max_retries",
    "max_backoff",
    "group_by",
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class SyncConfigError(ConfigError):
    """A ``[sync]`` value is missing, of the wrong type or out of range; the message names the key."""


@dataclass(frozen=True, slots=True)
class SyncSettings:
    enabled: bool = True  # runs only when an admin key is available too
    interval_s: float = 3600.0
    on_start: bool = True  # run once when the collector starts
    base_url: str = DEFAULT_BASE_URL
    admin_key_env: str = "OPENAI_ADMIN_KEY"
    admin_key: str | None = field(default=None, repr=False)
    endpoints: tuple[str, ...] = ALL_ENDPOINTS
    bucket_width: str = "1d"  # usage endpoints; costs only exist per day
    backfill_days: int = 30
    trailing_s: float = 48 * 3600.0
    timeout_s: float = 30.0
    max_retries: int = 5
    max_backoff_s: float = 60.0
    group_by: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GROUP_BY))

    @property
    def bucket_seconds(self) -> int:
        return _WIDTHS[self.bucket_width]

    @property
    def configured(self) -> bool:
        return self.enabled and bool(self.admin_key)


def parse_duration(value: Any, key: str) -> float:
    """Seconds from a number of seconds or a string like ``"90s"``, ``"15m"``, ``"1h"``, ``"2d"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise SyncConfigError(
            f'sync.{key} must be a duration like 3600, "90s", "15m", "1h" or "2d", got {value!r}'
        )
    if seconds <= 0:
        raise SyncConfigError(f"sync.{key} must be positive, got {value!r}")
    return seconds


def _bool(sec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = sec.get(key, default)
    if not isinstance(value, bool):
        raise SyncConfigError(f"sync.{key} must be true or false, got {value!r}")
    return value


def _int(sec: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = sec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise SyncConfigError(f"sync.{key} must be an integer from {lo} to {hi}, got {value!r}")
    return value


def _str(sec: Mapping[str, Any], key: str, default: str) -> str:
    value = sec.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise SyncConfigError(f"sync.{key} must be a non-empty string, got {value!r}")
    return value.strip()


def _endpoints(sec: Mapping[str, Any]) -> tuple[str, ...]:
    value = sec.get("endpoints", list(ALL_ENDPOINTS))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SyncConfigError(f"sync.endpoints must be a list of names, got {value!r}")
    unknown = [v for v in value if v not in ALL_ENDPOINTS]
    if unknown:
        raise SyncConfigError(
            f"sync.endpoints: unknown endpoint(s) {', '.join(unknown)}; known: {', '.join(ALL_ENDPOINTS)}"
        )
    # Keep the canonical order so a run always reads endpoints the same way.
    return tuple(e for e in ALL_ENDPOINTS if e in value)


def _group_by(sec: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    out = dict(DEFAULT_GROUP_BY)
    value = sec.get("group_by", {})
    if not isinstance(value, dict):
        raise SyncConfigError("sync.group_by must be a table of endpoint = [keys]")
    for endpoint, keys in value.items():
        if endpoint not in DEFAULT_GROUP_BY:
            raise SyncConfigError(f"sync.group_by.{endpoint}: unknown endpoint")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise SyncConfigError(f"sync.group_by.{endpoint} must be a list of strings, got {keys!r}")
        out[endpoint] = tuple(keys)
    return out


def parse_sync_settings(raw: Mapping[str, Any], env: Mapping[str, str]) -> SyncSettings:
    """Settings from the whole TOML dict (only ``[sync]`` is read) and the environment."""
    sec = raw.get("sync", {})
    if not isinstance(sec, dict):
        raise SyncConfigError("sync must be a table ([sync])")
    unknown = set(sec) - _KEYS
    if unknown:
        raise SyncConfigError(
            f"sync: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}"
        )
    width = _str(sec, "bucket_width", "1d")
    if width not in _WIDTHS:
        raise SyncConfigError(f"sync.bucket_width must be one of 1m, 1h, 1d, got {width!r}")
    base_url = env.get("SPENDSCOPE_OPENAI_BASE_URL") or _str(sec, "base_url", DEFAULT_BASE_URL)
    if not base_url.startswith(("http://", "https://")):
        raise SyncConfigError(f"sync.base_url must be an http(s) URL, got {base_url!r}")
    key_env = _str(sec, "admin_key_env", "OPENAI_ADMIN_KEY")
    return SyncSettings(
        enabled=_bool(sec, "enabled", True),
        interval_s=parse_duration(sec.get("interval", 3600), "interval"),
        on_start=_bool(sec, "on_start", True),
        base_url=base_url.rstrip("/"),
        admin_key_env=key_env,
        admin_key=(env.get(key_env) or "").strip() or None,
        endpoints=_endpoints(sec),
        bucket_width=width,
        backfill_days=_int(sec, "backfill_days", 30, 1, 366),
        trailing_s=parse_duration(sec.get("trailing", "48h"), "trailing"),
        timeout_s=parse_duration(sec.get("timeout", 30), "timeout"),
        max_retries=_int(sec, "max_retries", 5, 0, 20),
        max_backoff_s=parse_duration(sec.get("max_backoff", 60), "max_backoff"),
        group_by=_group_by(sec),
    )
