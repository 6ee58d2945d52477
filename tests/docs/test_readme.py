"""The README is the front door: its two commands, the one line, and links that land.

`mkdocs build --strict` (``make docs``) checks every link inside ``docs/``; the README is not part of
the site, so its relative links and their ``#fragments`` are checked here, with the site's own
Markdown settings from ``mkdocs.yml`` so a fragment means the same heading id the site gives it.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
import pytest
from mkdocs.config import load_config

REPO = Path(__file__).resolve().parents[2]


class _Collect(HTMLParser):
    """Every link target and every element id of one rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if (tag, name) in {("a", "href"), ("img", "src")}:
                self.targets.append(value)
            elif name == "id":
                self.ids.add(value)


def _renderer() -> Callable[[Path], _Collect]:
    """Render Markdown as the site does (mkdocs.yml's extensions); each page is rendered once."""
    config = load_config(str(REPO / "mkdocs.yml"))
    cache: dict[Path, _Collect] = {}

    def render(path: Path) -> _Collect:
        if path not in cache:
            md = markdown.Markdown(
                extensions=config.markdown_extensions, extension_configs=config.mdx_configs
            )
            cache[path] = _Collect()
            cache[path].feed(md.convert(path.read_text(encoding="utf-8")))
        return cache[path]

    return render


def test_readme_shows_the_two_commands_and_the_one_line() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
    assert "import spendscope\nspendscope.instrument()\n" in text


def test_readme_links_land(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the snippets extension resolves includes from the repository root
    render = _renderer()
    readme = REPO / "README.md"
    page = render(readme)
    relative = [t for t in page.targets if not urlsplit(t).scheme and not t.startswith("//")]
    assert any(t.startswith("docs/") for t in relative), "the README links into docs/"
    broken = []
    for target in relative:
        parts = urlsplit(target)
        path = (REPO / unquote(parts.path)).resolve() if parts.path else readme
        if not path.exists():
            broken.append(f"{target}: no such file")
            continue
        if parts.fragment and path.suffix == ".md" and parts.fragment not in render(path).ids:
            broken.append(f"{target}: no heading with the id #{parts.fragment}")
    assert not broken, "README.md has broken links:\n" + "\n".join(broken)
