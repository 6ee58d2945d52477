"""Collector configuration: one TOML file plus environment overrides.

The raw TOML dict is kept whole on :class:`Config` so that other components (sync, alerts) parse
their own sections; this module parses only ``[collector]``, ``[retention]`` and
``[[pricing.overrides]]`` with ``[pricing] extra_tables``. Every error names the file, the key and
what is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spendscope.pricing.build import ExtraTableRef, extra_table_refs
from spendscope.pricing.loading import PriceDataError

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_HOST",
    "DEFAULT_OPENAI_BASE_URL",
    "DEFAULT_PORT",
    "CollectorSettings",
    "Config",
    "ConfigError",
    "RetentionSettings",
    "load_config",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318
DEFAULT_DB = "spendscope.duckdb"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db_path: str = DEFAULT_DB
    max_body_bytes: int = 16 * 1024 * 1024
    # Spans decoded and waiting for the writer; past this the receiver answers 503 + Retry-After.
    max_queue_spans: int = 200_000
    # Requests decoded at the same time; each holds up to max_body_bytes of input.
    max_concurrent_decodes: int = 4
    # Spans the writer commits in one transaction when requests queue up (group commit).
    writer_batch_spans: int = 20_000
    # How long the writer waits for more requests before a commit. Every insert into DuckDB has a
    # fixed cost of several ms, so under load a longer wait means fewer, larger, cheaper commits.
    writer_linger_ms: int = 50
    # Processes that decode request bodies; None = the cores (max 4; none on one core), 0 = in-process.
    decode_workers: int | None = None
    retry_after_s: int = 1
    rollup_interval_s: int = 60
    log_level: str = "INFO"
    duckdb_memory_limit: str | None = None
    duckdb_threads: int | None = None
    # WAL size at which DuckDB folds it into the file. Its default (16 MB, about 30k calls) makes
    # ingest rewrite the same half-full row group over and over; 64 MB is about one row group.
    duckdb_checkpoint_threshold: str = "64MB"
    # Host names a loopback-bound collector answers besides the loopback ones (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ()
    # A collector bound beyond loopback without SPENDSCOPE_TOKEN refuses to start unless this is true.
    allow_unauthenticated: bool = False
    # Seconds a connection may take to send a request's headers (idle and slow clients are closed).
    header_timeout_s: int = 10
    # Requests in flight at once; past this, 503 with Retry-After (/healthz is always answered).
    max_inflight_requests: int = 256


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    calls_days: int | None = None  # None keeps calls forever
    rejected_days: int | None = 30
    rollup_days: int | None = None


@dataclass(frozen=True, slots=True)
class Config:
    collector: CollectorSettings = field(default_factory=CollectorSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    pricing_overrides: tuple[dict[str, Any], ...] = ()
    pricing_extra_tables: tuple[ExtraTableRef, ...] = ()  # [pricing] extra_tables, resolved paths
    token: str | None = None
    openai_admin_key: str | None = None
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    path: str | None = None  # the file read, for messages
    raw: Mapping[str, Any] = field(default_factory=dict)


def _where(path: str | None, key: str) -> str:
    return f"{path or '<defaults>'}: {key}"


def _get_int(
    table: Mapping[str, Any],
    key: str,
    default: int | None,
    path: str | None,
    section: str,
    *,
    minimum: int = 0,
) -> int | None:
    if key not in table:
        return default
    value = table[key]
    # bool is an int subclass; `true` is never a sensible count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{_where(path, f'{section}.{key}')} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{_where(path, f'{section}.{key}')} must be >= {minimum}, got {value}")
    return value


def _get_str(
    table: Mapping[str, Any], key: str, default: str | None, path: str | None, section: str
) -> str | None:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{_where(path, f'{section}.{key}')} must be a non-empty string, got {value!r}")
    return value


_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _get_size(table: Mapping[str, Any], key: str, default: str | None, path: str | None) -> str | None:
    """A DuckDB memory size ("64MB", "2GiB"), checked here so a typo fails at load, not at open."""
    value = _get_str(table, key, default, path, "collector")
    if value is not None and not _SIZE.match(value):
        raise ConfigError(
            f'{_where(path, f"collector.{key}")} must be a size like "64MB" or "2GiB", got {value!r}'
        )
    return value


def _section(raw: Mapping[str, Any], name: str, path: str | None) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{_where(path, name)} must be a table")
    return value


_COLLECTOR_KEYS = {
    "host",
    "port",
    "db",
    "max_body_bytes",
    "max_queue_spans",
    "max_concurrent_decodes",
    "writer_batch_spans",
    "writer_linger_ms",
    "decode_workers",
    "retry_after_s",
    "rollup_interval_s",
    "log_level",
    "duckdb_memory_limit",
    "duckdb_threads",
    "duckdb_checkpoint_threshold",
    "allowed_hosts",
    "allow_unauthenticated",
    "header_timeout_s",
    "max_inflight_requests",
}
_RETENTION_KEYS = {"calls_days", "rejected_days", "rollup_days"}


def _parse_collector(raw: Mapping[str, Any], path: str | None) -> CollectorSettings:
    sec = _section(raw, "collector", path)
    unknown = set(sec) - _COLLECTOR_KEYS
    if unknown:
        raise ConfigError(
            f"{_where(path, 'collector')}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_COLLECTOR_KEYS))}"
        )
    d = CollectorSettings()
    port = _get_int(sec, "port", d.port, path, "collector")
    assert port is not None
    if port > 65535:
        raise ConfigError(f"{_where(path, 'collector.port')} must be <= 65535, got {port}")
    level = (_get_str(sec, "log_level", d.log_level, path, "collector") or d.log_level).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{_where(path, 'collector.log_level')} must be DEBUG, INFO, WARNING or ERROR")

    def pos(key: str, default: int) -> int:
        v = _get_int(sec, key, default, path, "collector", minimum=1)
        assert v is not None
        return v

    return CollectorSettings(
        host=_get_str(sec, "host", d.host, path, "collector") or d.host,
        port=port,
        db_path=_get_str(sec, "db", d.db_path, path, "collector") or d.db_path,
        max_body_bytes=pos("max_body_bytes", d.max_body_bytes),
        max_queue_spans=pos("max_queue_spans", d.max_queue_spans),
        max_concurrent_decodes=pos("max_concurrent_decodes", d.max_concurrent_decodes),
        writer_batch_spans=pos("writer_batch_spans", d.writer_batch_spans),
        writer_linger_ms=_get_int(sec, "writer_linger_ms", d.writer_linger_ms, path, "collector", minimum=0)
        or 0,
        decode_workers=_get_int(sec, "decode_workers", None, path, "collector", minimum=0),
        retry_after_s=pos("retry_after_s", d.retry_after_s),
        rollup_interval_s=pos("rollup_interval_s", d.rollup_interval_s),
        log_level=level,
        duckdb_memory_limit=_get_size(sec, "duckdb_memory_limit", None, path),
        duckdb_threads=_get_int(sec, "duckdb_threads", None, path, "collector", minimum=1),
        duckdb_checkpoint_threshold=_get_size(
            sec, "duckdb_checkpoint_threshold", d.duckdb_checkpoint_threshold, path
        )
        or d.duckdb_checkpoint_threshold,
        allowed_hosts=_get_hosts(sec, path),
        allow_unauthenticated=_get_bool(sec, "allow_unauthenticated", False, path),
        header_timeout_s=pos("header_timeout_s", d.header_timeout_s),
        max_inflight_requests=pos("max_inflight_requests", d.max_inflight_requests),
    )


def _get_bool(table: Mapping[str, Any], key: str, default: bool, path: str | None) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{_where(path, f'collector.{key}')} must be true or false, got {value!r}")
    return value


def _get_hosts(table: Mapping[str, Any], path: str | None) -> tuple[str, ...]:
    value = table.get("allowed_hosts", [])
    if not isinstance(value, list) or not all(isinstance(h, str) and h for h in value):
        raise ConfigError(f"{_where(path, 'collector.allowed_hosts')} must be a list of host names")
    return tuple(h.lower() for h in value)


def _parse_retention(raw: Mapping[str, Any], path: str | None) -> RetentionSettings:
    sec = _section(raw, "retention", path)
    unknown = set(sec) - _RETENTION_KEYS
    if unknown:
        raise ConfigError(
            f"{_where(path, 'retention')}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_RETENTION_KEYS))}"
        )
    d = RetentionSettings()
    # 0 means "keep forever", which reads better in a file than leaving the key out.
    values = {
        k: _get_int(sec, k, getattr(d, k), path, "retention", minimum=0) or None
        for k in sorted(_RETENTION_KEYS)
    }
    r = RetentionSettings(**values)
    # Old days are answered from the rollups: dropping a day's rollup while its calls remain
    # would make that day's spend vanish from every answer.
    if r.rollup_days is not None and (r.calls_days is None or r.rollup_days < r.calls_days):
        keep = "forever" if r.calls_days is None else f"{r.calls_days} days"
        raise ConfigError(
            f"{_where(path, 'retention.rollup_days')} ({r.rollup_days}) must be 0 (forever) or at "
            f"least calls_days (calls are kept {keep}): rollups answer the old days"
        )
    return r


def _parse_overrides(raw: Mapping[str, Any], path: str | None) -> tuple[dict[str, Any], ...]:
    pricing = _section(raw, "pricing", path)
    rows = pricing.get("overrides", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(
            f"{_where(path, 'pricing.overrides')} must be an array of tables ([[pricing.overrides]])"
        )
    for i, row in enumerate(rows):
        if not isinstance(row.get("model"), str) or not row["model"]:
            raise ConfigError(f"{_where(path, f'pricing.overrides[{i}].model')} is required (a model name)")
    return tuple(dict(r) for r in rows)


def _parse_extra_tables(raw: Mapping[str, Any], path: str | None) -> tuple[ExtraTableRef, ...]:
    try:
        return extra_table_refs(_section(raw, "pricing", path).get("extra_tables"), path)
    except PriceDataError as exc:
        raise ConfigError(str(exc)) from None


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    db: str | None = None,
) -> Config:
    """Read the TOML file (``path``, else ``SPENDSCOPE_CONFIG``, else none) and apply overrides.

    Precedence: command-line arguments, then environment variables, then the file, then defaults.
    """
    env = os.environ if env is None else env
    file = str(path) if path is not None else (env.get("SPENDSCOPE_CONFIG") or None)
    raw: dict[str, Any] = {}
    if file is not None:
        p = Path(file)
        try:
            with p.open("rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    collector = _parse_collector(raw, file)
    retention = _parse_retention(raw, file)
    overrides = _parse_overrides(raw, file)
    extra_tables = _parse_extra_tables(raw, file)
    db_path = db or env.get("SPENDSCOPE_DB") or collector.db_path
    collector = CollectorSettings(
        **{
            **{k: getattr(collector, k) for k in CollectorSettings.__dataclass_fields__},
            "db_path": db_path,
            "host": host or collector.host,
            "port": port if port is not None else collector.port,
        }
    )
    return Config(
        collector=collector,
        retention=retention,
        pricing_overrides=overrides,
        pricing_extra_tables=extra_tables,
        token=env.get("SPENDSCOPE_TOKEN") or None,
        openai_admin_key=env.get("OPENAI_ADMIN_KEY") or None,
        openai_base_url=(env.get("SPENDSCOPE_OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL).rstrip("/"),
        path=file,
        raw=raw,
    )
