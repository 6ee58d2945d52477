"""The configuration reference is generated from the config declarations: the committed page is current."""

from __future__ import annotations

from pathlib import Path

from spendscope.collector.configdoc import main, update_page

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_page_is_generated_from_the_declarations() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert text == update_page(text), "docs/configuration.md is stale: run `make docs` and commit it"


def test_check_mode_reports_a_stale_page(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(PAGE.read_text(encoding="utf-8").replace("| `port` |", "| `prot` |"), encoding="utf-8")
    assert main([str(page), "--check"]) == 1
    assert main([str(page)]) == 0 and main([str(page), "--check"]) == 0
    assert page.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8")
