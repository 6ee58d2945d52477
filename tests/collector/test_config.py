"""The config loader: one duration syntax, declared overrides, and every problem reported at once."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from spendscope.collector.config import (
    CollectorSettings,
    Config,
    ConfigError,
    RetentionSettings,
    load_config,
)
from spendscope.collector.durations import MAX_DURATION_S, format_duration, parse_duration
from spendscope.collector.section import Flag, Int, Section, Text, declared, file_key, setting
from spendscope.collector.sync.config import SyncSettings
from spendscope.collector.validation import validate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90),
        (0.5, 0.5),
        ("90s", 90),
        ("1.5h", 5400),
        ("1w", 604800),
        ("2d", 172800),
        (" 15 m ", 900),
        ("3600", 3600),
        ("500ms", 0.5),
        ("3650d", MAX_DURATION_S),
    ],
)
def test_duration_syntax(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert isinstance(parse_duration(text), int) == float(seconds).is_integer()  # 3600, not 3600.0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "must not be negative"),
        ("-1s", "must be a duration"),
        (0, "must be positive"),
        ("0s", "must be positive"),
        (1e30, "must be at most 3650d"),
        ("1e30", "must be a duration"),
        (10**400, "must be at most"),
        (math.nan, "must be a duration"),
        (math.inf, "must be at most"),
        ("3651d", "must be at most"),
        (True, "must be a duration"),
        (None, "must be a duration"),
        ("5 parsecs", "must be a duration"),
        ("1.5.h", "must be a duration"),
    ],
)
def test_duration_bounds(value: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_duration(value)


def test_duration_zero_only_where_allowed() -> None:
    assert parse_duration(0, allow_zero=True) == 0 and parse_duration("0s", allow_zero=True) == 0
    assert [format_duration(s) for s in (0, 90, 3600, 5400, 172800, 0.5)] == [
        "0",
        "90s",
        "1h",
        "90m",
        "2d",
        "0.5s",
    ]


def test_defaults_are_unchanged() -> None:
    assert CollectorSettings().model_dump() == {
        "host": "127.0.0.1",
        "port": 4318,
        "db_path": "spendscope.duckdb",
        "max_body_bytes": 16 * 1024 * 1024,
        "max_queue_spans": 200_000,
        "max_concurrent_decodes": 4,
        "writer_batch_spans": 20_000,
        "writer_linger_ms": 50,
        "decode_workers": None,
        "retry_after_s": 1,
        "rollup_interval_s": 60,
        "log_level": "INFO",
        "duckdb_memory_limit": None,
        "duckdb_threads": None,
        "duckdb_checkpoint_threshold": "64MB",
        "allowed_hosts": (),
        "allow_unauthenticated": False,
        "header_timeout_s": 10,
        "max_inflight_requests": 256,
    }
    assert RetentionSettings().model_dump() == {"calls_days": None, "rejected_days": 30, "rollup_days": None}
    s = SyncSettings()
    assert (s.interval_s, s.trailing_s, s.timeout_s, s.max_backoff_s) == (3600, 48 * 3600, 30, 60)
    assert (s.backfill_days, s.max_retries, s.bucket_width, s.on_start, s.enabled) == (
        30,
        5,
        "1d",
        True,
        True,
    )
    c = load_config(None, env={})
    assert c.path is None and c.token is None and c.sync.admin_key is None and c.alerts.rules == ()


def test_every_problem_at_once_with_file_key_and_source(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    rule = '[[alerts.rules]]\nname = "b"\nkind = "budget"\nperiod = "day"\namount_usd = "1"\n'
    rule += 'channels = ["p", "q"]\n'
    f.write_text(
        '[colector]\n[collector]\nport = "eighty"\nprot = 1\n'
        '[sync]\ninterval_s = 5\nadmin_key = "sk-admin-x"\n'
        '[alerts.channels.p]\ntype = "pagerduty"\nrouting_key = 5\n' + rule
    )
    env = {"SPENDSCOPE_OPENAI_BASE_URL": "api.openai.com", "SPENDSCOPE_DB": "/tmp/x.duckdb"}
    with pytest.raises(ConfigError) as info:
        load_config(f, env=env, host="")
    lines = str(info.value).splitlines()
    assert set(lines) == {
        f"{f}: sync.admin_key: is read only from the environment (OPENAI_ADMIN_KEY), never from the file",
        f"{f}: colector: unknown key; did you mean 'collector'? "
        "(known: collector, retention, pricing, sync, alerts, lake)",
        f"{f}: collector.port: must be an integer, got 'eighty'",
        f"{f}: collector.prot: unknown key; did you mean 'port'? (known: host, port, db, max_body_bytes, "
        "max_queue_spans, max_concurrent_decodes, writer_batch_spans, writer_linger_ms, decode_workers, "
        "retry_after_s, rollup_interval_s, log_level, duckdb_memory_limit, duckdb_threads, "
        "duckdb_checkpoint_threshold, allowed_hosts, allow_unauthenticated, header_timeout_s, "
        "max_inflight_requests)",
        f"{f}: sync.interval_s: unknown key; did you mean 'interval'? (known: enabled, interval, on_start, "
        "base_url, admin_key_env, endpoints, bucket_width, backfill_days, trailing, timeout, max_retries, "
        "max_backoff, group_by)",
        "SPENDSCOPE_OPENAI_BASE_URL (sets sync.base_url): must be an http(s) URL, got 'api.openai.com'",
        f"{f}: alerts.channels.p.routing_key: must be a string",  # a secret: its value is not echoed
    }
    # The rules are checked against the channels once the channels themselves are valid.
    f.write_text('[alerts.channels.p]\ntype = "pagerduty"\nrouting_key = "k"\n' + rule)
    with pytest.raises(
        ConfigError, match=r"c\.toml: alerts\.rules\[0\] \(b\)\.channels: unknown channel 'q' "
    ):
        load_config(f, env={})
    with pytest.raises(
        ConfigError, match=r"^--port \(sets collector\.port\): must be between 0 and 65535, got 70000$"
    ):
        load_config(None, env={}, port=70000)


def test_declared_overrides_win_in_order(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[collector]\ndb = "/file.duckdb"\nhost = "0.0.0.0"\n[sync]\nadmin_key_env = "MY_KEY"\n')
    env = {"SPENDSCOPE_DB": "/env.duckdb", "MY_KEY": " sk-admin-m ", "OPENAI_ADMIN_KEY": "sk-admin-default"}
    c = load_config(f, env=env)
    assert (c.collector.db_path, c.collector.host, c.sync.admin_key) == (
        "/env.duckdb",
        "0.0.0.0",
        "sk-admin-m",
    )
    c = load_config(f, env=env, db="/flag.duckdb", host="::1", port=0)
    assert (c.collector.db_path, c.collector.host, c.collector.port) == ("/flag.duckdb", "::1", 0)
    assert (
        load_config(None, env={"SPENDSCOPE_DB": ""}).collector.db_path == "spendscope.duckdb"
    )  # empty = unset


def _env_fields(model: type[Section]) -> list[tuple[str, str]]:
    out = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            out += _env_fields(field.annotation)
        elif declared(field).get("x-env") and not declared(field).get("x-internal"):
            out.append((name, declared(field)["x-env"]))
    return out


def test_every_declared_variable_reaches_its_key() -> None:
    found = _env_fields(Config)
    assert {var for _, var in found} == {
        "SPENDSCOPE_DB",
        "SPENDSCOPE_TOKEN",
        "OPENAI_ADMIN_KEY",
        "SPENDSCOPE_OPENAI_BASE_URL",
    }
    c = load_config(None, env={var: f"https://{var.lower()}" for _, var in found})
    got = {name: getattr(c, name, None) for name, _ in found}
    got |= {name: getattr(s, name) for s in (c.collector, c.sync) for name, _ in found if hasattr(s, name)}
    assert all(value == f"https://{var.lower()}" for (name, var) in found for value in [got[name]]), got
    assert file_key("db_path", CollectorSettings.model_fields["db_path"]) == "db"


def test_sections_build_by_attribute_name_in_python() -> None:
    s = SyncSettings(interval_s=60, max_backoff_s=0.2, admin_key="sk-admin-z")
    assert s.interval_s == 60 and s.configured and "sk-admin-z" not in repr(s)
    with pytest.raises(ValueError, match="frozen"):
        s.interval_s = 5  # type: ignore[misc]


# Keys other changes will add, declared here as they would be, to show each is one declaration: the
# loader, the messages, the overrides and the reference page need nothing else. ([pricing]
# extra_tables has landed as such a declaration in config.py.)
class _Lake(Section):
    """The shared store of several collectors."""

    catalog: Text = setting(env="SPENDSCOPE_LAKE_CATALOG", help="The catalog database (a DSN).")
    data_path: Text = setting(env="SPENDSCOPE_LAKE_DATA_PATH", help="Where the Parquet files go.")
    replica: Text | None = setting(None, env="SPENDSCOPE_REPLICA", help="Unique per replica.")
    ship_interval_s: Int = setting(10, ge=1, help="Committed local rows reach the lake this often.")


class _Collector(CollectorSettings):
    allowed_hosts: tuple[Text, ...] = setting((), help="Host names accepted on a loopback bind.")
    allow_unauthenticated: Flag = setting(False, help="Start on a non-loopback bind without a token.")


class _Future(Config):
    collector: _Collector = setting(default_factory=_Collector, help="The collector.")
    lake: _Lake | None = setting(None, help="Several collectors, one store.")  # a new section: one line


def test_a_new_key_or_section_is_one_declaration() -> None:
    assert validate(_Future, {}, path="c.toml", env={}).lake is None  # no [lake]: nothing changes
    table = {
        "lake": {
            "catalog": "postgres:dbname=s",
            "data_path": "/mnt/s/",
            "ship_interval_s": 0,
            "replcia": "a",
        },
        "collector": {"allowed_hosts": ["collector.internal", 5], "allow_unauthenticated": "yes"},
        "pricing": {"extra_tables": "prices.toml"},
    }
    with pytest.raises(ConfigError) as info:
        validate(_Future, table, path="c.toml", env={"SPENDSCOPE_REPLICA": ""})
    assert set(str(info.value).splitlines()) == {
        "c.toml: lake.ship_interval_s: must be >= 1, got 0",
        "c.toml: lake.replcia: unknown key; did you mean 'replica'? "
        "(known: catalog, data_path, replica, ship_interval_s)",
        "c.toml: collector.allowed_hosts[1]: must be a string, got 5",
        "c.toml: collector.allow_unauthenticated: must be true or false, got 'yes'",
        "c.toml: pricing.extra_tables: must be a list of file names, got 'prices.toml'",  # landed since
    }
    lake = validate(
        _Future,
        {"lake": {"data_path": "/mnt/s/"}},
        path="c.toml",
        env={"SPENDSCOPE_LAKE_CATALOG": "postgres:host=db", "SPENDSCOPE_REPLICA": "collector-b"},
    ).lake
    assert lake is not None and (lake.catalog, lake.replica, lake.ship_interval_s) == (
        "postgres:host=db",
        "collector-b",
        10,
    )


def test_a_secret_is_never_echoed(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[alerts.channels.s]\ntype = "slack"\nurl_env = "HOOK"\n')
    with pytest.raises(ConfigError) as info:
        load_config(f, env={"HOOK": "hooks.example/T0/s3cret"})
    assert str(info.value) == f"{f}: alerts.channels.s.url: must be an http(s) URL"
    f.write_text('[alerts.channels.s]\ntype = "slack"\nurl = "http://h/x"\nurl_env = "HOOK"\n')
    with pytest.raises(ConfigError, match=r"alerts\.channels\.s\.url: give either url or url_env, not both"):
        load_config(f, env={"HOOK": "http://h/y"})
