"""`spendscope pricing import` on the data LiteLLM and genai-prices ship, from a file and a loopback URL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from spendscope.pricing import PriceDataError, PriceTable, Usage, price_usage
from spendscope.pricing.foreign import parse_genai_prices, parse_litellm
from spendscope.pricing.importing import compare_foreign
from spendscope.pricing.loading import parse_data
from tests.pricing.foreign_data import genai_prices_json, litellm_json, litellm_wheel
from tests.pricing.test_cli import run

AT = "2026-12-07T00:00:00Z"
DAY = date(2026, 12, 7)
# What the reviewed table does not price of genai-prices' OpenAI models, each reviewed out of scope
# in check_exceptions.toml (retired GPT-3 models, OpenRouter names, open-weight models, Azure ft names).
GP_OUT_OF_SCOPE = [
    "ada",
    "babbage",
    "curie",
    "davinci",
    "gpt-4o-mini-2024-07-18.ft-",
    "gpt-4o:extended",
    "gpt-5-image",
    "gpt-5-image-mini",
    "gpt-5.4-image-2",
    "gpt-oss-120b",
    "gpt-oss-20b",
    "gpt-oss-safeguard-20b",
    "text-davinci-002",
    "text-davinci-003",
]


class _Files(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    _Files.files = {"/litellm.json": litellm_json(), "/genai-prices.json": genai_prices_json()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _import(*argv: str) -> dict:  # type: ignore[type-arg]
    code, text = run(["pricing", "import", *argv, "--json", "--at", AT])
    assert code == 0, text
    return json.loads(text)  # type: ignore[no-any-return]


def test_litellm_file_and_url_give_the_same_report(tmp_path: Path, served: str) -> None:
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_bytes(litellm_json())
    from_file = _import(str(path), "--format", "litellm")
    from_url = _import(f"{served}/litellm.json", "--format", "litellm")
    from_wheel = _import(str(litellm_wheel()), "--format", "litellm")
    for doc in (from_url, from_wheel):
        assert {k: v for k, v in doc.items() if k != "origin"} == {
            k: v for k, v in from_file.items() if k != "origin"
        }
    assert from_url["origin"] == f"{served}/litellm.json"
    # The reviewed table prices every OpenAI text, embedding, audio and image model LiteLLM knows.
    assert (from_file["models"], from_file["covered"], from_file["coverage"]) == (174, 174, "1")
    assert from_file["lacks"] == []
    # Every disagreement is one that `pricing check` lists as reviewed against LiteLLM.
    from spendscope.pricing.check import load_exceptions

    reviewed = {
        (e.model, e.tier, e.field, e.ours, e.theirs) for e in load_exceptions() if e.source == "litellm"
    }
    found = {(d["model"], d["tier"], d["field"], d["ours"], d["theirs"]) for d in from_file["disagreements"]}
    assert found and found <= reviewed
    # The disagreement issue 18 names is there, explained.
    assert ("gpt-4o-search-preview", "default", "cached_input_per_mtok", "2.5", "1.25") in found
    # Video models and per-size image estimates are listed as not read, with the reason.
    assert any(i["entry"] == "sora-2" for i in from_file["ignored"])


def test_genai_prices_import_writes_a_file_that_loads_and_changes_no_reviewed_row(
    tmp_path: Path, served: str
) -> None:
    out = tmp_path / "prices-extra.toml"
    doc = _import(f"{served}/genai-prices.json", "--format", "genai-prices", "--write", str(out))
    assert doc["written"] == str(out)
    assert [m["model"] for m in doc["lacks"]] == GP_OUT_OF_SCOPE
    assert doc["covered"] == doc["models"] - len(GP_OUT_OF_SCOPE)
    text = out.read_text()
    assert f"from {served}/genai-prices.json (genai-prices format)" in text
    data = parse_data(text.encode(), where=str(out), origin="extra:prices-extra.toml")
    assert {r.model for r in data.rows} == set(GP_OUT_OF_SCOPE)
    assert all(
        r.source.startswith(f"genai-prices data ({served}/genai-prices.json), imported 2026-12-07")
        for r in data.rows
    )
    assert {a.alias for a in data.aliases} == {"text-ada-001", "text-curie-001", "text-davinci-001"}

    base = PriceTable.default()
    table = base.with_extra_table("prices-extra.toml", out.read_bytes())
    when = datetime(2026, 12, 7, tzinfo=UTC)
    for model in base.models():  # every reviewed row is still the one in force
        for tier in ("default", "flex", "priority", "batch"):
            assert table.row_in_force(model, tier, DAY) == base.row_in_force(model, tier, DAY)
    assert table.shadowed() == []  # it wrote only what the table lacked
    priced = price_usage(table, "gpt-oss-120b", when, Usage(input_tokens=1_000_000))
    assert (priced.status, priced.price_id) == (
        "priced",
        "extra:prices-extra.toml:gpt-oss-120b:2020-06-11:default",
    )
    # Importing again against the table with the new file finds nothing left to add.
    config = tmp_path / "spendscope.toml"
    config.write_text('[pricing]\nextra_tables = ["prices-extra.toml"]\n')
    again = _import(f"{served}/genai-prices.json", "--format", "genai-prices", "--config", str(config))
    assert again["lacks"] == [] and again["covered"] == again["models"]


def test_a_litellm_file_with_a_new_model_is_written_with_its_tiers(tmp_path: Path) -> None:
    doc = json.loads(litellm_json())
    doc["gpt-9-preview"] = {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 3e-06,
        "cache_read_input_token_cost": 3e-07,
        "output_cost_per_token": 1.5e-05,
        "input_cost_per_token_batches": 1.5e-06,
        "output_cost_per_token_batches": 7.5e-06,
        "input_cost_per_token_above_272k_tokens": 6e-06,
        "output_cost_per_token_above_272k_tokens": 2.25e-05,
    }
    src = tmp_path / "litellm.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "extra.toml"
    report = _import(str(src), "--format", "litellm", "--write", str(out))
    assert [m["model"] for m in report["lacks"]] == ["gpt-9-preview"]
    assert report["lacks"][0]["tiers"] == ["default", "batch"]
    table = PriceTable.default().with_extra_table("extra.toml", out.read_bytes())
    row = table.lookup("gpt-9-preview", datetime(2026, 12, 7, tzinfo=UTC))
    assert row is not None and row.origin == "extra:extra.toml"
    assert (str(row.input_per_mtok), str(row.cached_input_per_mtok), str(row.output_per_mtok)) == (
        "3",
        "0.3",
        "15",
    )
    assert (row.long_context_threshold, str(row.long_context_input_per_mtok)) == (272000, "6")
    batch = table.lookup("gpt-9-preview", datetime(2026, 12, 7, tzinfo=UTC), batch=True)
    assert batch is not None and str(batch.input_per_mtok) == "1.5"


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (b"not json at all", "litellm", "not valid JSON"),
        (b"[1, 2]", "litellm", "expected a JSON object of model entries"),
        (
            b'{"gpt-x": {"litellm_provider": "openai", "input_cost_per_token": "cheap"}}',
            "litellm",
            "'input_cost_per_token' must be a number",
        ),
        (
            b'{"gpt-x": {"litellm_provider": "openai", "output_cost_per_token": -1}}',
            "litellm",
            "must be a finite number >= 0",
        ),
        (b'{"claude-x": {"litellm_provider": "anthropic"}}', "litellm", "no OpenAI model found"),
        (b'{"a": 1}', "genai-prices", "expected a JSON array of providers"),
        (b'[{"id": "anthropic", "models": []}]', "genai-prices", "no provider with id 'openai'"),
        (
            b'[{"id": "openai", "models": [{"id": "gpt-x", "match": {"equals": "gpt-x"}, "prices": 3}]}]',
            "genai-prices",
            "'prices' must be an object or an array",
        ),
        (b"\xff\xfe", "genai-prices", "not UTF-8"),
    ],
)
def test_a_bad_file_gets_an_error_naming_what_is_wrong(
    tmp_path: Path, content: bytes, fmt: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.json"
    src.write_bytes(content)
    code, text = run(["pricing", "import", str(src), "--format", fmt, "--write", str(tmp_path / "x.toml")])
    assert code == 2 and text == ""
    err = capsys.readouterr().err
    assert message in err and str(src) in err
    assert not (tmp_path / "x.toml").exists()


def test_unreachable_url_and_missing_file_are_clear(
    tmp_path: Path, served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["pricing", "import", f"{served}/nothing.json", "--format", "litellm"])[0] == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert run(["pricing", "import", str(tmp_path / "absent.json"), "--format", "litellm"])[0] == 2
    assert "cannot read" in capsys.readouterr().err
    assert run(["pricing", "import", "ftp://example.invalid/x", "--format", "litellm"])[0] == 2
    assert "only http(s) URLs and local files" in capsys.readouterr().err


def test_parsers_read_what_the_wheels_ship() -> None:
    litellm = parse_litellm(litellm_json(), origin="wheel", today=DAY)
    gpt55 = next(m for m in litellm.models if m.name == "gpt-5.5")
    assert {r.tier for r in gpt55.rows} == {"default", "flex", "priority", "batch"}
    whisper = next(m for m in litellm.models if m.name == "whisper-1")
    assert str(whisper.rows[0].per_minute) == "0.006"
    gp = parse_genai_prices(genai_prices_json(), origin="wheel", today=DAY)
    o3 = next(m for m in gp.models if m.name == "o3")
    assert [(r.valid_from.isoformat(), str(r.input_per_mtok)) for r in o3.rows if r.tier == "default"] == [
        ("2020-06-11", "10"),
        ("2025-06-10", "2"),
    ]
    assert "o3-2025-04-16" in o3.names
    # Compared with the reviewed table, genai-prices' current prices and ours agree on the headline models.
    report = compare_foreign(PriceTable.default(), gp, DAY)
    assert not [
        d for d in report.disagreements if d.model in ("gpt-5.5", "gpt-5.4", "o3") and d.tier == "default"
    ]


def test_a_bad_extra_table_is_rejected_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        PriceDataError, match=r"extra.toml: \[\[price\]\] #1 \(model 'x'\): a row needs at least one price"
    ):
        PriceTable.default().with_extra_table(
            "extra.toml",
            b'schema = 1\n[[price]]\nmodel = "x"\nvalid_from = 2026-01-01\n'
            b'source = "s"\nchecked = 2026-01-01\n',
        )
