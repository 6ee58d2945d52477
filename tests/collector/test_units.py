"""Pure parts of the collector: decode, normalize, pricing cache, config, query building."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendscope.collector.config import ConfigError, load_config
from spendscope.collector.normalize import Rejected, normalize, rows_from_protobuf
from spendscope.collector.otlp import SpanData, decode_protobuf, decode_protobuf_generic, walk_protobuf
from spendscope.collector.pricer import Pricer, pico_to_decimal
from spendscope.collector.queries import build_spend
from spendscope.collector.schema import ROW_FIELDS
from spendscope.collector.store import Store
from spendscope.collector.web import Keys, parse_time
from spendscope.isotime import parse_since
from spendscope.pricing import PriceTable, Usage, price_usage
from tests.collector.helpers import genai_attrs, make_request, span_dict

pytestmark = pytest.mark.server

_attr_values = st.one_of(
    st.text(max_size=300),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.binary(max_size=20),
    st.lists(st.one_of(st.text(max_size=10), st.integers(min_value=0, max_value=10**6)), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(min_value=0, max_value=9), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(min_size=0, max_size=200), _attr_values, max_size=8), max_size=5))
def test_fast_decode_equals_generic_decode(attr_sets: list[dict[str, object]]) -> None:
    req = make_request(
        [span_dict(a, start_ns=1_700_000_000_000_000_000 + i) for i, a in enumerate(attr_sets)]
    )
    body = req.SerializeToString()
    # Twice: the second pass is served from the attribute cache.
    assert decode_protobuf(body) == decode_protobuf_generic(body)
    assert decode_protobuf(body) == decode_protobuf_generic(body)


def test_attribute_cache_skips_values_unique_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from spendscope.collector import fastpb

    monkeypatch.setattr(fastpb, "_UNIQUE_AFTER", 3)
    cache = fastpb.AttributeCache(lambda key, value: (0, None))
    spans = [
        span_dict(
            {"spendscope.openai.request_id": f"req_{i}", "x.serial": i, "x.model": "gpt-4o"},
            start_ns=1_700_000_000_000_000_000 + i,
        )
        for i in range(6)
    ]
    body = make_request(spans).SerializeToString()
    assert walk_protobuf(body, cache, None)[1] == decode_protobuf_generic(body)
    cached_keys = cache.cached_keys()
    assert "spendscope.openai.request_id" not in cached_keys  # known to be unique per call
    assert cached_keys.count("x.serial") == 3 and "x.serial" in cache.unique  # learnt
    assert cached_keys.count("x.model") == 1
    assert walk_protobuf(body, cache, None)[1] == decode_protobuf_generic(body)


def _span(attrs: dict[str, object], **kw: object) -> SpanData:
    base = {
        "trace_id": b"\x01" * 16,
        "span_id": b"\x02" * 8,
        "name": "chat",
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_001_500_000_000,
        "status_error": False,
        "attributes": attrs,
        "resource": {"service.name": "svc"},
    }
    base.update(kw)
    return SpanData(**base)  # type: ignore[arg-type]


def _row(attrs: dict[str, object], **kw: object) -> dict[str, object]:
    row = normalize(_span(attrs, **kw))
    assert row is not None
    return dict(zip(ROW_FIELDS, row, strict=True))


def test_normalize_current_and_deprecated_names() -> None:
    r = _row(
        {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": "12",
            "gen_ai.usage.completion_tokens": 3.0,
            "gen_ai.usage.cache_creation.input_tokens": 4,
            "gen_ai.openai.response.service_tier": "default",
            "llm.is_streaming": "true",
            "http.status_code": 200,
        }
    )
    assert (r["provider"], r["operation"], r["api"], r["model"]) == (
        "openai",
        "chat",
        "chat_completions",
        "gpt-4o",
    )
    assert (r["input_tokens"], r["output_tokens"], r["cache_write_input_tokens"]) == (12, 3, 4)
    assert r["service_tier"] == "default" and r["stream"] is True and r["status_code"] == 200
    assert r["service"] == "svc" and r["end_ns"] - r["start_ns"] == 1_500_000_000
    # The successor name wins over the deprecated one.
    r = _row(
        genai_attrs(
            **{"gen_ai.usage.cache_write.input_tokens": 7, "gen_ai.usage.cache_creation.input_tokens": 9}
        )
    )
    assert r["cache_write_input_tokens"] == 7


def test_normalize_sdk_attributes_and_errors() -> None:
    r = _row(
        genai_attrs(
            "gpt-4o",
            **{
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "http.response.status_code": 429,
                "error.type": "rate_limit_exceeded",
                "spendscope.tag.team": "core",
                "spendscope.tag.n": 5,
                "spendscope.user": "u",
                "spendscope.attempt": 1,
                "spendscope.retry_after_s": 2,
                "openai.api.type": "responses",
                "spendscope.batch": True,
            },
        )
    )
    assert r["model"] == "gpt-4o-2024-08-06" and r["request_model"] == "gpt-4o"
    assert r["is_error"] is True and r["error_type"] == "rate_limit_exceeded" and r["attempt"] == 1
    assert sorted(r["tags"]) == [("n", "5"), ("team", "core")]  # type: ignore[arg-type]
    assert r["retry_after_s"] == 2.0 and r["api"] == "responses" and r["batch"] is True
    assert r["input_tokens"] is None, "absent counts stay NULL, never 0"
    assert _row(genai_attrs(), status_error=True)["is_error"] is True  # transport failure
    assert normalize(_span({"db.system": "x"})) is None
    with pytest.raises(Rejected, match="without a model"):
        normalize(_span({"gen_ai.provider.name": "openai"}))
    with pytest.raises(Rejected, match="must be a boolean"):
        normalize(_span(genai_attrs(**{"gen_ai.request.stream": 2.5})))
    # 32-bit columns: a status or attempt beyond them is this span's problem, not the batch's.
    with pytest.raises(Rejected, match=r"http\.response\.status_code out of range"):
        normalize(_span(genai_attrs(**{"http.response.status_code": 2**40})))
    with pytest.raises(Rejected, match=r"spendscope\.attempt out of range"):
        normalize(_span(genai_attrs(**{"spendscope.attempt": -(2**31) - 1})))


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(
        [
            "gpt-4o-mini",
            "gpt-4o-2024-08-06",
            "gpt-4.1",
            "o3-mini",
            "text-embedding-3-small",
            "gpt-4o-audio-preview",
            "unknown-model-x",
            "gpt-5",
        ]
    ),
    tier=st.sampled_from([None, "default", "flex", "priority", "auto", "weird"]),
    batch=st.booleans(),
    days_ago=st.integers(min_value=0, max_value=900),
    counts=st.lists(
        st.one_of(st.none(), st.integers(min_value=0, max_value=400_000)), min_size=7, max_size=7
    ),
    is_error=st.booleans(),
)
def test_pricer_agrees_with_the_engine(
    model: str, tier: str | None, batch: bool, days_ago: int, counts: list[int | None], is_error: bool
) -> None:
    table = PriceTable.default()
    pricer = Pricer(table)
    at = datetime(2026, 6, 1, 12, tzinfo=UTC) - timedelta(days=days_ago)
    start_ns = int(at.timestamp()) * 10**9
    price_id, status, pico = pricer.price(
        model, tier, batch, start_ns=start_ns, is_error=is_error, tokens=counts
    )
    if all(c is None for c in counts):
        assert pico == (0 if is_error else None)
        return
    usage = Usage(*[c or 0 for c in counts])
    expected = price_usage(table, model, at, usage, service_tier=tier, batch=batch)
    assert status == expected.status
    assert price_id == expected.price_id
    if expected.cost is None:
        assert pico is None
    else:
        assert pico is not None
        assert abs(pico_to_decimal(pico) - expected.cost) < pico_to_decimal(1)


def test_config_file_env_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[collector]\nport = 9999\ndb = "/x/a.duckdb"\n[sync]\nenabled = false\n'
        "[retention]\ncalls_days = 90\n"
    )
    c = load_config(f, env={"SPENDSCOPE_DB": "/y/b.duckdb", "SPENDSCOPE_TOKEN": "t"})
    assert c.collector.port == 9999 and c.collector.db_path == "/y/b.duckdb" and c.token == "t"
    assert c.retention.calls_days == 90 and not c.sync.enabled
    assert load_config(f, env={}, db="/z.duckdb", port=1).collector.db_path == "/z.duckdb"
    c = load_config(None, env={"SPENDSCOPE_CONFIG": str(f)})
    assert c.path == str(f)
    f.write_text('[collector]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match=r"c\.toml: collector\.port: must be an integer, got 'eighty'"):
        load_config(f, env={})
    f.write_text("[collector]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(f, env={})
    f.write_text("[collector\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(f, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", env={})
    f.write_text("[[pricing.overrides]]\ninput_per_mtok = 1\n")
    with pytest.raises(ConfigError, match=r"pricing\.overrides\[0\]\.model"):
        load_config(f, env={})


def test_config_duckdb_sizes(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    assert load_config(None, env={}).collector.duckdb_checkpoint_threshold == "64MB"
    f.write_text("[collector]\nwriter_linger_ms = 0\n")
    assert load_config(f, env={}).collector.writer_linger_ms == 0
    f.write_text('[collector]\nduckdb_checkpoint_threshold = "256 MiB"\nduckdb_memory_limit = "2GB"\n')
    c = load_config(f, env={}).collector
    assert (c.duckdb_checkpoint_threshold, c.duckdb_memory_limit) == ("256 MiB", "2GB")
    store = Store(str(tmp_path / "s.duckdb"), checkpoint_threshold=c.duckdb_checkpoint_threshold)
    row = store.connection.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
    store.close()
    assert row is not None and row[0] == "256.0 MiB"
    f.write_text("[retention]\ncalls_days = 90\nrollup_days = 30\n")
    with pytest.raises(
        ConfigError, match=r"retention\.rollup_days: must be 0 \(forever\) or at least calls_"
    ):
        load_config(f, env={})
    f.write_text("[retention]\nrollup_days = 30\n")  # calls kept forever, rollups not
    with pytest.raises(ConfigError, match="calls are kept forever"):
        load_config(f, env={})
    f.write_text('[collector]\nduckdb_checkpoint_threshold = "lots"\n')
    with pytest.raises(ConfigError, match=r"collector\.duckdb_checkpoint_threshold: must be a size"):
        load_config(f, env={})


def test_query_inputs_and_rollup_routing() -> None:
    assert parse_time("2026-01-02") == datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_time("2026-01-02T03:00:00+01:00") == datetime(2026, 1, 2, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="time zone"):
        parse_time("2026-01-02T03:00:00")
    with pytest.raises(ValueError, match="'soon'"):
        parse_time("soon")
    for extreme in ("0001-01-01", "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z"):
        with pytest.raises(ValueError, match="out of range"):
            parse_time(extreme)
    keys = Keys(["day", "model"])
    assert keys.parse("day, model") == ("day", "model")
    with pytest.raises(ValueError, match="repeated"):
        keys.parse("day,day")
    with pytest.raises(ValueError, match="unknown key 'user'"):
        keys.parse("user")
    s, e = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC)
    assert "rollup_daily" in build_spend(s, e, ["day", "model"], []).sql
    assert "rollup_daily" not in build_spend(s, e, ["day", "model"], None).sql
    assert "rollup_daily" not in build_spend(s, e, ["user"], []).sql
    assert "rollup_daily" not in build_spend(s, s + timedelta(hours=5), ["model"], []).sql
    # Partial first day, two dirty days in a row and a partial last day: three ranges from calls.
    q = build_spend(
        s + timedelta(hours=3), e + timedelta(hours=2), ["model"], [date(2026, 1, 5), date(2026, 1, 6)]
    )
    assert (q.params["lo0"], q.params["hi0"]) == (s + timedelta(hours=3), datetime(2026, 1, 2, tzinfo=UTC))
    assert (q.params["lo1"], q.params["hi1"]) == (
        datetime(2026, 1, 5, tzinfo=UTC),
        datetime(2026, 1, 7, tzinfo=UTC),
    )
    assert (q.params["lo2"], q.params["hi2"]) == (e, e + timedelta(hours=2))
    assert "lo3" not in q.params
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-01-01", now) == datetime(2026, 1, 1, tzinfo=UTC)


def test_retention_deletes_old_calls_rollups_and_rejections(tmp_path: Path) -> None:
    from spendscope.collector.config import RetentionSettings
    from spendscope.collector.ingest import build_batch, insert_batch, mark_days_dirty
    from spendscope.collector.rollups import apply_retention, roll_dirty_days
    from spendscope.collector.store import Store

    now = datetime(2026, 6, 30, 12, tzinfo=UTC)
    spans = [
        span_dict(
            genai_attrs(**{"gen_ai.usage.input_tokens": 5}),
            start_ns=int((now - timedelta(days=d)).timestamp() * 1e9),
        )
        for d in (1, 5, 20, 40)
    ] + [span_dict({"gen_ai.operation.name": "chat"})]  # rejected: no model
    batch = build_batch(
        rows_from_protobuf(make_request(spans).SerializeToString()), Pricer(PriceTable.default())
    )
    store = Store(str(tmp_path / "r.duckdb"))
    store.migrate()
    con = store.connection
    insert_batch(con, batch.table, batch.lo, batch.hi, batch.rejected)
    mark_days_dirty(con, batch.days)
    # A day still receiving calls is left for a later pass.
    busy = (now - timedelta(days=1)).date()
    assert roll_dirty_days(con, now, limit=1, skip=[busy]) == 1
    assert con.execute("SELECT max(day) FROM rollup_state WHERE dirty").fetchone() == (busy,)
    con.execute("UPDATE rollup_state SET dirty = true")
    # In steps, newest days first, as the collector's job does; then nothing is left dirty.
    assert roll_dirty_days(con, now, limit=3) == 3
    assert con.execute("SELECT min(day) FROM rollup_state WHERE dirty").fetchone() == (
        (now - timedelta(days=40)).date(),
    )
    assert roll_dirty_days(con, now, limit=3) == 1
    assert roll_dirty_days(con, now) == 0
    assert con.execute("SELECT count(DISTINCT day) FROM rollup_daily").fetchone() == (4,)
    con.execute("UPDATE rejected_spans SET received_at = $t", {"t": now - timedelta(days=60)})
    deleted = apply_retention(con, now, RetentionSettings(calls_days=10, rejected_days=30, rollup_days=30))
    assert deleted == {"calls": 2, "rejected_spans": 1, "rollup_daily": 1}
    assert con.execute("SELECT count(*) FROM calls").fetchone() == (2,)
    assert con.execute("SELECT count(DISTINCT day) FROM rollup_daily").fetchone() == (3,)
    assert con.execute("SELECT count(DISTINCT day) FROM rollup_latency_daily").fetchone() == (3,)
    # Unlimited retention deletes nothing.
    forever = RetentionSettings(calls_days=None, rejected_days=None, rollup_days=None)
    assert apply_retention(con, now, forever) == {}
    store.close()
