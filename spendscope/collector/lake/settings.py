"""``[lake]``: where the shared store is and who this replica is ([The lake](lake.md)).

Every key is one declaration (:func:`~spendscope.collector.section.setting`), with the environment
variable that overrides it, so one shared config file serves every replica. The catalog string is
``postgres:`` followed by libpq ``key=value`` pairs (values may be quoted with single quotes); it is
checked here, so a typo stops the collector at start with the key named instead of failing at the
first attach. Pure: no I/O but the host name for the default replica name.
"""

from __future__ import annotations

import re
import socket
from typing import Annotated

from pydantic import AfterValidator, Field

from spendscope.collector.section import Number, Section, Text, setting

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "ENV_CATALOG",
    "ENV_DATA_PATH",
    "ENV_REPLICA",
    "LakeSettings",
    "default_replica",
    "libpq_pairs",
]

ENV_CATALOG = "SPENDSCOPE_LAKE_CATALOG"
ENV_DATA_PATH = "SPENDSCOPE_LAKE_DATA_PATH"
ENV_REPLICA = "SPENDSCOPE_REPLICA"
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
# A catalog that does not answer within this is retried later: ingest goes on meanwhile.
DEFAULT_CONNECT_TIMEOUT_S = 5


def libpq_pairs(text: str) -> dict[str, str]:
    """``key=value`` pairs of a libpq string, in order; :class:`ValueError` naming what is wrong."""
    pairs: dict[str, str] = {}
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if m is None:
            raise ValueError(f"expected key=value at {text[pos:].strip()[:40]!r}")
        key, value = m.group(1), m.group(2)
        if key not in _LIBPQ:
            raise ValueError(f"unknown libpq key {key!r}")
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        pairs[key] = value
        pos = m.end()
    return pairs


def _catalog(value: str) -> str:
    if not value.startswith("postgres:"):
        raise ValueError(
            "must start with 'postgres:' followed by libpq key=value pairs "
            "(e.g. 'postgres:dbname=spendscope host=db.internal user=spendscope')"
        )
    if not libpq_pairs(value.removeprefix("postgres:")):
        raise ValueError("names no database: add libpq pairs such as 'dbname=spendscope host=db'")
    return value


def _data_path(value: str) -> str:
    return value if value.endswith("/") else value + "/"


def _replica(value: str) -> str:
    if not _REPLICA.match(value):
        raise ValueError("must be 1-100 letters, digits and _.:@- (starting with a letter or digit)")
    return value


Catalog = Annotated[
    Text, AfterValidator(_catalog), Field(json_schema_extra={"x-type": "postgres:<libpq pairs>"})
]
DataPath = Annotated[
    Text, AfterValidator(_data_path), Field(json_schema_extra={"x-type": "directory or s3:// prefix"})
]
ReplicaName = Annotated[Text, AfterValidator(_replica)]


class LakeSettings(Section):
    """Several collectors, one store: a DuckLake with its catalog in PostgreSQL and its data as
    Parquet files on shared storage ([The lake](lake.md)). Without this section (and without
    `SPENDSCOPE_LAKE_CATALOG`), one collector owns one DuckDB file, as always."""

    catalog: Catalog = setting(
        env=ENV_CATALOG,
        help="The catalog database: `postgres:` then libpq `key=value` pairs (`dbname`, `host`, `port`, "
        "`user`, `sslmode`, …; a unix-socket directory works as `host`). Unless it sets "
        f"`connect_timeout`, {DEFAULT_CONNECT_TIMEOUT_S} s is used.",
    )
    data_path: DataPath = setting(
        env=ENV_DATA_PATH,
        help="Where the Parquet files go: a directory every replica mounts at the same path, or "
        "`s3://bucket/prefix/`. Every replica must be able to write it.",
    )
    replica: ReplicaName | None = setting(
        None,
        env=ENV_REPLICA,
        help="This replica's name, unique among live replicas (its ship ledger is kept under it); "
        "default: the host name and port. The variable lets one config file serve every replica.",
    )
    ship_interval_s: Number = setting(
        10, ge=1, help="Committed local rows reach the lake at least this often (seconds)."
    )

    @property
    def libpq(self) -> str:
        """The libpq connection string, with a connect timeout unless one was given."""
        text = self.catalog.removeprefix("postgres:").strip()
        if "connect_timeout" not in libpq_pairs(text):
            text += f" connect_timeout={DEFAULT_CONNECT_TIMEOUT_S}"
        return text

    @property
    def attach_string(self) -> str:
        return f"ducklake:postgres:{self.libpq}"

    def redacted(self) -> str:
        """The catalog string without its password, for logs and status."""
        pairs = libpq_pairs(self.catalog.removeprefix("postgres:"))
        return "postgres:" + " ".join(f"{k}={'***' if k == 'password' else v}" for k, v in pairs.items())


def default_replica(port: int) -> str:
    """The replica name when none is given: this host's name and the collector's port."""
    return f"{socket.gethostname()}:{port}"
