"""Sphinx extension: after an HTML build, every internal link and image of the site must resolve.

Checks each ``href``/``src`` of every built page that is not an external URL: the file must exist
and a ``#fragment`` must be an ``id`` (or ``name``) on the page it points to. External URLs are
not fetched (the build runs offline). Each broken link is a warning, so ``-W`` fails the build.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sphinx.util import logging

logger = logging.getLogger(__name__)
EXTERNAL = ("http:", "https:", "mailto:", "data:", "javascript:", "ftp:", "tel:")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif name == "src" or (name == "href" and tag in ("a", "link", "area")):
                self.links.append(value)


def broken_links(root: Path) -> list[str]:
    """``"page: link"`` for each internal link under ``root`` that does not resolve."""
    pages: dict[Path, _Page] = {}
    for path in sorted(root.rglob("*.html")):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        pages[path.resolve()] = page
    broken = []
    for path, page in pages.items():
        for link in page.links:
            if link.lower().startswith(EXTERNAL) or link.startswith("//"):
                continue
            parts = urlsplit(link)
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            rel = path.relative_to(root.resolve())
            if not target.exists():
                broken.append(f"{rel}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{rel}: {link} (no id {parts.fragment!r})")
    return broken


def _check(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    broken = broken_links(Path(app.outdir))
    for line in broken:
        logger.warning("broken internal link: %s", line)
    logger.info("check_links: %d broken internal links", len(broken))


def setup(app):
    app.connect("build-finished", _check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
