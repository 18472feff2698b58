"""The built documentation site in a real browser: each tutorial page renders with its figures.

Runs after `make docs` (which builds build/docs/html and installs Debian's chromium). Chromium is
driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``, standard library only):
each page is loaded from disk, and after its load event the page itself reports every ``<img>``
with its decoded size. A figure whose file is missing or unreadable decodes to width 0, which the
second test proves by deleting one figure from a copy of the site.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("TORCHSPIKE_DOCS_HTML", ROOT / "build" / "docs" / "html"))
TUTORIALS = sorted(p.stem for p in (ROOT / "docs" / "tutorials").glob("[0-9]*.py"))

# Waits for every image to finish loading or failing, then describes each one in the article.
IMAGES_JS = """
(async () => {
  const imgs = Array.from(document.querySelectorAll('article img'));
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener('load', r); i.addEventListener('error', r); })));
  return {
    title: document.title,
    outputs: document.querySelectorAll('article .cell_output').length,
    errors: document.querySelectorAll('article .output.traceback, article .output.error').length,
    images: imgs.map(i => ({src: i.getAttribute('src'), width: i.naturalWidth,
                            height: i.naturalHeight, shown: i.getBoundingClientRect().width})),
  };
})()
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: `make docs` installs Debian's package")


class Browser:
    """Headless Chromium over the DevTools protocol on fds 3/4 (NUL-terminated JSON)."""

    def __init__(self) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        self._profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"ts-docs-chromium-{os.getpid()}"
        args = [
            _chromium(),
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=1200,900",
            f"--user-data-dir={self._profile}",
            "about:blank",
        ]

        def fds() -> None:  # in the child: the protocol's fixed descriptors 3 and 4
            read, write = (
                fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)
            )
            os.dup2(read, 3)
            os.dup2(write, 4)

        self._proc = subprocess.Popen(
            args,
            preexec_fn=fds,
            pass_fds=(3, 4),  # kept open after preexec_fn, which put the pipes there
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self._session = attached["sessionId"]
        self.call("Page.enable", session=True)

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._events.append(reply)

    def _wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self._events):
            self._events.append(self._read())
        self._events.clear()

    def open(self, path: Path) -> dict:
        """Load ``path`` and return what IMAGES_JS reports about it."""
        self._events.clear()
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        self._wait_for("Page.loadEventFired")
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=IMAGES_JS,
            awaitPromise=True,
            returnByValue=True,
        )
        return result["result"]["value"]

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        shutil.rmtree(self._profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    if not (SITE / "index.html").exists():
        if os.environ.get("TORCHSPIKE_DOCS_REQUIRED"):
            pytest.fail(f"no built site at {SITE}: `make docs` must run first")
        pytest.skip(f"no built site at {SITE}: run `make docs` first")
    b = Browser()
    yield b
    b.close()


def _problems(report: dict) -> list[str]:
    problems = []
    if report["errors"]:
        problems.append(f"{report['errors']} error outputs")
    if report["outputs"] == 0:
        problems.append("no executed cell outputs")
    figures = [i for i in report["images"] if i["width"] > 0 and i["height"] > 0]
    if not figures:
        problems.append("no figure")
    for image in report["images"]:
        if image["width"] == 0 or image["height"] == 0:
            problems.append(f"figure {image['src']} does not load")
        elif image["shown"] < 50:
            problems.append(f"figure {image['src']} is shown {image['shown']:.0f} px wide")
    return problems


def test_tutorials_are_found():
    assert TUTORIALS, "no docs/tutorials/NN_name.py"


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_page_renders_with_figures(browser, name):
    page = SITE / "tutorials" / f"{name}.html"
    assert page.exists(), f"{name}.py has no page in the built site"
    report = browser.open(page)
    assert not _problems(report), f"{page.name}: {_problems(report)}"


def test_a_missing_figure_is_caught(browser, tmp_path):
    """Delete one figure of the first tutorial from a copy of the site: the check must fail."""
    page = SITE / "tutorials" / f"{TUTORIALS[0]}.html"
    report = browser.open(page)
    figure = next(i["src"] for i in report["images"] if i["width"] > 0)
    copy = tmp_path / "html"
    shutil.copytree(SITE, copy)
    (copy / "tutorials" / figure).resolve().unlink()
    broken = browser.open(copy / "tutorials" / page.name)
    assert f"figure {figure} does not load" in _problems(broken)
