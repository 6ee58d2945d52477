"""The generated reference tables (configuration, calls columns) are current in the committed pages."""

from __future__ import annotations

import shutil
from pathlib import Path

from spendscope.collector.docgen import PAGES, main, update_page

ROOT = Path(__file__).resolve().parents[2]


def test_generated_pages_are_current() -> None:
    for page, (name, reference) in PAGES.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        assert text == update_page(text, name, reference), f"{page} is stale: run `make docs` and commit it"


def test_check_mode_reports_a_stale_page(tmp_path: Path) -> None:
    for page in PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / page, tmp_path / page)
    page = tmp_path / "docs" / "configuration.md"
    page.write_text(page.read_text(encoding="utf-8").replace("| `port` |", "| `prot` |"), encoding="utf-8")
    assert main(["--check"], root=tmp_path) == 1
    assert main([], root=tmp_path) == 0 and main(["--check"], root=tmp_path) == 0
    assert page.read_text(encoding="utf-8") == (ROOT / "docs" / "configuration.md").read_text(
        encoding="utf-8"
    )
