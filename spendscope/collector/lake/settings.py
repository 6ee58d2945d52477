"""``[lake]``: where the shared store is and who this replica is, with the environment overrides.

The catalog string is ``postgres:`` followed by libpq ``key=value`` pairs (values may be quoted
with single quotes); it is checked here so that a typo stops the collector at start with the key
named, instead of failing at the first attach. Pure: no I/O but the host name for the default
replica name.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spendscope.collector.config import ConfigError

__all__ = [
    "ENV_CATALOG",
    "ENV_DATA_PATH",
    "ENV_REPLICA",
    "LakeSettings",
    "libpq_pairs",
    "parse_catalog",
    "parse_lake",
]

ENV_CATALOG = "SPENDSCOPE_LAKE_CATALOG"
ENV_DATA_PATH = "SPENDSCOPE_LAKE_DATA_PATH"
ENV_REPLICA = "SPENDSCOPE_REPLICA"
_KEYS = frozenset({"catalog", "data_path", "replica", "ship_interval_s"})
# libpq connection keywords (PostgreSQL 13-18); anything else is a typo libpq would refuse later.
_LIBPQ = frozenset(
    {
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth",
        "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
        "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
        "sslnegotiation", "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword",
        "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
        "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib",
        "gssdelegation", "service", "target_session_attrs", "load_balance_hosts",
    }
)  # fmt: skip
_PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)")
_REPLICA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$")
# A replica that answers slower than this is not waited for: the lease and heartbeats go on.
DEFAULT_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class LakeSettings:
    catalog: str  # as given: "postgres:dbname=... host=..."
    data_path: str  # a directory or an s3:// prefix, ending in "/"
    replica: str
    ship_interval_s: float = 10.0
    # How long the leader's lease lasts without a renewal; renewed every lease_s / 5.
    lease_s: float = 15.0

    @property
    def libpq(self) -> str:
        """The libpq connection string, with a connect timeout unless one was given."""
        pairs = libpq_pairs(self.catalog.removeprefix("postgres:"))
        text = self.catalog.removeprefix("postgres:").strip()
        if "connect_timeout" not in pairs:
            text += f" connect_timeout={DEFAULT_CONNECT_TIMEOUT_S}"
        return text

    @property
    def attach_string(self) -> str:
        return f"ducklake:postgres:{self.libpq}"

    def redacted(self) -> str:
        """The catalog string without its password, for logs and status."""
        pairs = libpq_pairs(self.catalog.removeprefix("postgres:"))
        return "postgres:" + " ".join(f"{k}={'***' if k == 'password' else v}" for k, v in pairs.items())


def libpq_pairs(text: str) -> dict[str, str]:
    """``key=value`` pairs of a libpq string, in order; :class:`ValueError` naming what is wrong."""
    pairs: dict[str, str] = {}
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if m is None:
            rest = text[pos:].strip()
            raise ValueError(f"expected key=value at {rest[:40]!r}")
        key, value = m.group(1), m.group(2)
        if key not in _LIBPQ:
            raise ValueError(f"unknown libpq key {key!r}")
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        pairs[key] = value
        pos = m.end()
    return pairs


def parse_catalog(value: Any, where: str) -> str:
    """Check a catalog string; return it stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string like 'postgres:dbname=spendscope host=db'")
    text = value.strip()
    if not text.startswith("postgres:"):
        raise ConfigError(
            f"{where} must start with 'postgres:' followed by libpq key=value pairs "
            f"(e.g. 'postgres:dbname=spendscope host=db.internal user=spendscope'), got {text[:60]!r}"
        )
    try:
        pairs = libpq_pairs(text.removeprefix("postgres:"))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not pairs:
        raise ConfigError(f"{where} names no database: add libpq pairs such as 'dbname=spendscope host=db'")
    return text


def _default_replica(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


def parse_lake(
    raw: Mapping[str, Any], path: str | None, env: Mapping[str, str], port: int
) -> LakeSettings | None:
    """The ``[lake]`` section with environment overrides, or None when there is no lake."""
    where = path or "<defaults>"
    section = raw.get("lake", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: lake must be a table")
    unknown = set(section) - _KEYS
    if unknown:
        raise ConfigError(
            f"{where}: lake: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}"
        )
    catalog = env.get(ENV_CATALOG) or section.get("catalog")
    data_path = env.get(ENV_DATA_PATH) or section.get("data_path")
    if catalog is None and data_path is None and not section:
        return None
    catalog_where = ENV_CATALOG if env.get(ENV_CATALOG) else f"{where}: lake.catalog"
    if catalog is None:
        raise ConfigError(f"{where}: lake.catalog is required (or set {ENV_CATALOG})")
    catalog = parse_catalog(catalog, catalog_where)
    if not isinstance(data_path, str) or not data_path.strip():
        raise ConfigError(
            f"{where}: lake.data_path is required: a shared directory or s3:// prefix "
            f"(or set {ENV_DATA_PATH})"
        )
    data_path = data_path.strip()
    if not data_path.endswith("/"):
        data_path += "/"
    replica = env.get(ENV_REPLICA) or section.get("replica") or _default_replica(port)
    replica_where = ENV_REPLICA if env.get(ENV_REPLICA) else f"{where}: lake.replica"
    if not isinstance(replica, str) or not _REPLICA.match(replica):
        raise ConfigError(
            f"{replica_where} must be 1-100 characters of letters, digits and _.:@- "
            f"(starting with a letter or digit), got {replica!r}"
        )
    interval = section.get("ship_interval_s", 10)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval >= 1:
        raise ConfigError(f"{where}: lake.ship_interval_s must be a number of seconds >= 1, got {interval!r}")
    return LakeSettings(catalog, data_path, replica, float(interval))
