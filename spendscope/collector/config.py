"""The collector's configuration: one TOML file, overridden by the environment and the command line.

:class:`Config` is the whole file. ``[collector]``, ``[retention]`` and ``[pricing]`` are declared
here; ``[sync]`` and ``[alerts]`` by their components, next to their code. :func:`load_config`
validates every section at once, so a start either has a complete valid config or one error that
lists every problem, each with the file, the key and what is wrong.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Required, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from spendscope.collector.alerts.config import AlertsConfig
from spendscope.collector.lake.settings import LakeSettings
from spendscope.collector.section import ConfigError, Flag, Int, Section, Size, Text, fail, setting
from spendscope.collector.sync.config import SyncSettings
from spendscope.collector.validation import validate
from spendscope.pricing.build import ExtraTableRef, check_extra_tables, extra_table_refs

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_DB",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "CollectorSettings",
    "Config",
    "ConfigError",
    "PriceOverride",
    "PricingSettings",
    "RetentionSettings",
    "load_config",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318
DEFAULT_DB = "spendscope.duckdb"
CONFIG_ENV = "SPENDSCOPE_CONFIG"

LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR"],
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
]
# Days to keep; 0 reads better in a file than leaving the key out, and means forever (None).
KeepDays = Annotated[Int, Field(ge=0), AfterValidator(lambda days: days or None)] | None


class CollectorSettings(Section):
    """Where the collector listens and stores, its ingest limits and DuckDB's settings.

    How they move ingest speed: [the collector's performance notes](collector.md#performance).
    """

    host: Text = setting(DEFAULT_HOST, flag="--host", help="The address to listen on.")
    port: Int = setting(DEFAULT_PORT, ge=0, le=65535, flag="--port", help="The port: OTLP/HTTP and the API.")
    db_path: Text = setting(DEFAULT_DB, key="db", env="SPENDSCOPE_DB", flag="--db", help="The DuckDB file.")
    max_body_bytes: Int = setting(
        16 * 1024 * 1024, ge=1, help="A request body above this, compressed or decompressed, gets 413."
    )
    max_queue_spans: Int = setting(
        200_000, ge=1, help="Spans decoded and waiting for the writer; above this, 503 + Retry-After."
    )
    max_concurrent_decodes: Int = setting(
        4, ge=1, help="Requests decoded at the same time; each holds up to `max_body_bytes` of input."
    )
    writer_batch_spans: Int = setting(
        20_000, ge=1, help="Spans the writer commits in one transaction when requests queue up."
    )
    writer_linger_ms: Int = setting(
        50,
        ge=0,
        help="How long the writer waits for requests still being decoded before a commit. Every insert "
        "has a fixed cost of several ms, so under load a longer wait means fewer, cheaper commits.",
    )
    decode_workers: Int | None = setting(
        None,
        ge=0,
        help="Processes that decode request bodies; unset: the CPU cores (at most 4, none on one "
        "core); 0: decode in threads of the collector process.",
    )
    retry_after_s: Int = setting(1, ge=1, help="The Retry-After (seconds) sent with 503.")
    rollup_interval_s: Int = setting(60, ge=1, help="How often (seconds) settled dirty days are re-rolled.")
    log_level: LogLevel = setting("INFO", help="How much the collector logs (to stderr, as JSON lines).")
    duckdb_memory_limit: Size | None = setting(None, help="DuckDB's `memory_limit`; unset: DuckDB's own.")
    duckdb_threads: Int | None = setting(
        None, ge=1, help="DuckDB's threads; unset: half the cores, at least 1 (decode workers use the rest)."
    )
    duckdb_checkpoint_threshold: Size = setting(
        "64MB",
        help="The WAL size at which DuckDB folds it into the file. DuckDB's default (16MB, about 30k "
        "calls) makes ingest rewrite the same half-full row group again and again; 64MB is about one.",
    )
    allowed_hosts: tuple[Text, ...] = setting(
        (),
        help="Host names a collector bound to loopback answers besides the loopback ones; any other "
        "`Host` header is refused (DNS rebinding).",
    )
    allow_unauthenticated: Flag = setting(
        False,
        help="Start on an address beyond loopback without `SPENDSCOPE_TOKEN` (only if something else, "
        "such as a proxy or a firewall, guards it).",
    )
    header_timeout_s: Int = setting(
        10,
        ge=1,
        le=3600,
        help="Seconds a connection may take to send a request's headers; then it is closed.",
    )
    max_inflight_requests: Int = setting(
        256,
        ge=1,
        help="Requests handled at once; above this, 503 + Retry-After (`/healthz` is always answered).",
    )


class RetentionSettings(Section):
    """How long calls, rejected spans and rollups are kept; 0 or absent keeps them forever.

    What the retention job deletes and when: [Deployment: retention](deployment.md#retention).
    """

    calls_days: KeepDays = setting(None, help="Days of calls to keep.")
    rejected_days: KeepDays = setting(30, help="Days of rejected spans to keep.")
    rollup_days: KeepDays = setting(
        None, help="Days of daily rollups to keep: 0 (forever) or at least `calls_days`."
    )

    @model_validator(mode="after")
    def _rollups_outlive_calls(self) -> Self:
        # Old days are answered from the rollups: dropping a day's rollup while its calls remain
        # would make that day's spend vanish from every answer.
        if self.rollup_days is not None and (self.calls_days is None or self.rollup_days < self.calls_days):
            keep = "forever" if self.calls_days is None else f"{self.calls_days} days"
            fail(
                (
                    ("rollup_days",),
                    f"must be 0 (forever) or at least calls_days (calls are kept {keep}), "
                    f"got {self.rollup_days}: rollups answer the old days",
                )
            )
        return self


@with_config(ConfigDict(extra="allow"))
class PriceOverride(TypedDict, total=False):
    """One ``[[pricing.overrides]]`` table. The pricing package checks its other keys."""

    model: Required[Text]


_EXTRA_TABLES_HELP = (
    "Extra price files (the reviewed table's format), below the reviewed table and the overrides, in "
    "this order; a relative name is read next to the config file "
    "([Pricing: extra tables](pricing.md#extra-price-tables))."
)


class PricingSettings(Section):
    """Prices the collector applies besides the reviewed table."""

    overrides: tuple[PriceOverride, ...] = setting(
        (),
        help="`[[pricing.overrides]]`: negotiated or Azure prices, and aliases; each table has the keys of "
        "a price row and needs `model` ([Pricing](pricing.md#overrides-negotiated-discounts-azure)).",
    )
    extra_tables: Annotated[tuple[str, ...], BeforeValidator(check_extra_tables)] = setting(
        (), help=_EXTRA_TABLES_HELP
    )


class Config(Section):
    """The whole config file, and the settings that only the environment gives."""

    collector: CollectorSettings = setting(default_factory=CollectorSettings, help="The collector.")
    retention: RetentionSettings = setting(default_factory=RetentionSettings, help="Retention.")
    pricing: PricingSettings = setting(default_factory=PricingSettings, help="Pricing.")
    sync: SyncSettings = setting(default_factory=SyncSettings, help="The Usage and Costs sync.")
    alerts: AlertsConfig = setting(default_factory=AlertsConfig, help="Alert rules and channels.")
    lake: LakeSettings | None = setting(None, help="Several collectors, one store (DuckLake).")
    token: str | None = setting(
        None,
        env="SPENDSCOPE_TOKEN",
        env_only=True,
        help="When set, `/v1/traces`, `/api/*` and `/metrics` require `Authorization: Bearer <token>` "
        "([Authentication](api.md#authentication-and-request-policy)).",
    )
    path: str | None = setting(
        None, env=CONFIG_ENV, flag="--config", internal=True, help="The TOML config file."
    )

    @property
    def pricing_extra_tables(self) -> tuple[ExtraTableRef, ...]:
        """``[pricing] extra_tables`` as files: a relative name is read next to the config file."""
        return extra_table_refs(list(self.pricing.extra_tables), self.path)


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
    file = str(path) if path is not None else (env.get(CONFIG_ENV) or None)
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            with Path(file).open("rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read the config file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    flags = {"--host": host, "--port": port, "--db": db}
    return validate(Config, raw, path=file, env=env, flags=flags).model_copy(update={"path": file})
