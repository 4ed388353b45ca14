"""mkdocs hooks of the documentation site (mkdocs.yml names this file).

- The README is the site's home page: it is written once, at the root, for GitHub and for
  the site; its links into ``docs/`` become links between pages, its other links (files of
  the repository, not pages) plain text.
- A page that is not in ``nav`` is listed after it, so a new page needs no edit of
  mkdocs.yml to be built and reachable.
- ``<!-- generated: NAME -->`` on a line of its own is replaced by the generated block NAME
  (``tools/docs_tables.py``): the settings from the code, the performance figures from
  ``docs/performance-data.json`` (which ``python -m bench.publish`` writes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tools import docs_tables

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARKER = re.compile(r"^<!-- generated: ([a-z0-9-]+) -->$", re.M)
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def readme_as_home_page(text: str) -> str:
    """The README with its links made right for a page at the root of ``docs/``."""

    def link(match: re.Match[str]) -> str:
        label, target = match.groups()
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        if target.startswith("docs/"):
            return f"[{label}]({target.removeprefix('docs/')})"
        return label if label.startswith("`") else f"`{label}`"

    return _LINK.sub(link, text)


def pages_left_out(nav: list[Any], pages: list[str]) -> list[str]:
    """The documentation pages that ``nav`` does not name, in file-name order."""
    named: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, str):
            named.add(item)
        elif isinstance(item, dict):
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(nav)
    return sorted(page for page in pages if page not in named)


def fill_in(markdown: str, blocks: dict[str, str], page: str) -> str:
    """``markdown`` with each marker replaced by its block; an unknown name is an error."""

    def block(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in blocks:
            raise ValueError(f"{page}: no generated block named {name!r}")
        return blocks[name].rstrip("\n")

    return MARKER.sub(block, markdown)


# --- the hooks mkdocs calls -------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File  # noqa: PLC0415 - only where mkdocs runs

    files.append(
        File.generated(config, "index.md", content=readme_as_home_page(README.read_text()))
    )
    pages = [f.src_uri for f in files.documentation_pages()]
    left_out = pages_left_out(config["nav"], pages)
    if left_out:
        config["nav"].append({"More": left_out})
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER.search(markdown) is None:
        return markdown
    return fill_in(markdown, docs_tables.generated(), page.file.src_uri)
