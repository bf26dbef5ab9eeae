"""kmsnap docs: the page's data, its escaping (a catalog cannot inject markup or script), that
it fetches nothing, timelines from a real git repository, and the page itself in a real
headless Chromium (skipped where no browser is installed; .ci/run installs Debian's)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kmsnap.cli import run
from kmsnap.cli.environment import Environment
from kmsnap.docspage import build_page_data, render_page
from kmsnap.docspage.data import FLAGS, timeline_of
from kmsnap.docspage.page import embed_json
from kmsnap.model import Snapshot
from kmsnap.snapshot.store import save_snapshot

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "a0000000-0000-4000-8000-000000000001"
PRODUCT = "b0000000-0000-4000-8000-000000000001"
SCRIPT_BREAK = "</script><script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def catalog(*, hidden: bool = False, renamed: bool = False, stats: bool = False) -> Snapshot:
    snap = Snapshot(api="http://127.0.0.1:1/core")
    snap.add("account", {"id": ACCOUNT, "name": "Acme <b>Inc</b>"})
    snap.add("product", {"id": PRODUCT, "account_id": ACCOUNT, "name": IMG,
                         "environment": "production"})
    use = {"last_used_at": "2026-03-01T00:00:00Z", "total": 3} if stats else {}
    old = {"last_used_at": "2025-01-01T00:00:00Z", "total": 1} if stats else {}
    snap.add("event", {"id": "e1", "product_id": PRODUCT,
                       "name": "Checkout completed" if renamed else "Checkout finished",
                       "display_name": None, "description": "Paid", "is_visible": not hidden,
                       **use})
    snap.add("event", {"id": "e2", "product_id": PRODUCT, "name": SCRIPT_BREAK,
                       "display_name": "\u2028<!--", "description": None, "is_visible": True,
                       **old})
    snap.add("metric", {"id": "m1", "product_id": PRODUCT, "title": "Revenue & more",
                        "unit_type": "currency", "is_visible": True})
    return snap


def embedded(page: str) -> Any:
    match = re.search(r'<script type="application/json" id="kmsnap-data">(.*?)</script>', page,
                      re.S)
    assert match is not None
    return json.loads(match.group(1))


# --- escaping and self-containment ----------------------------------------------------------


def test_json_block_cannot_be_broken_out_of() -> None:
    text = embed_json({"name": SCRIPT_BREAK + "<!--&\u2028\u2029"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"name": SCRIPT_BREAK + "<!--&\u2028\u2029"}


def test_hostile_names_never_reach_the_markup() -> None:
    page = render_page(build_page_data(catalog(), title=IMG, source=SCRIPT_BREAK))
    assert SCRIPT_BREAK not in page and "<img" not in page and "<b>Inc" not in page
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page  # the title, escaped
    data = embedded(page)
    assert {e[4] for e in data["entities"]} >= {SCRIPT_BREAK, "Revenue & more"}
    assert data["products"][0][1] == IMG


def test_the_page_loads_nothing_from_anywhere() -> None:
    page = render_page(build_page_data(catalog()))
    markup = page.split('<script type="application/json"', 1)[0]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<link rel=\"stylesheet\"" not in page and "@import" not in page
    assert "connect-src 'none'" in markup and "default-src 'none'" in markup
    # The page's script sets data with textContent only: no HTML parsing of anything.
    script = page.rsplit("<script>", 1)[1]
    assert "innerHTML" not in script and "outerHTML" not in script
    assert "insertAdjacentHTML" not in script and "document.write" not in script


def test_flags_and_stale() -> None:
    data = build_page_data(catalog(hidden=True, stats=True), stale_days=90)
    flags = {e[3]: e[6] for e in data["entities"]}
    assert flags["e1"] & FLAGS["hidden"] and not flags["e1"] & FLAGS["stale"]
    assert flags["e2"] & FLAGS["no_description"] and flags["e2"] & FLAGS["stale"]
    assert not flags["m1"] & FLAGS["stale"]  # metrics have no usage stats
    assert data["stats"] is True and data["newest_use"].startswith("2026-03-01")
    assert build_page_data(catalog())["stats"] is False


def kmsnap(cwd: Path, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=io.StringIO(), stderr=err, environ={},
                      cwd=cwd, stdout_isatty=False, stderr_isatty=False)
    return run(list(args), env=env), err.getvalue()


def test_command_writes_the_same_bytes_twice(tmp_path: Path) -> None:
    save_snapshot(catalog(), tmp_path / "snapshots")
    assert kmsnap(tmp_path, "docs", "--out", "a.html")[0] == 0
    status, err = kmsnap(tmp_path, "docs", "snapshots", "-o", "b.html", "--title", "Ours")
    assert status == 0 and "wrote b.html: 5 entities" in err
    a, b = (tmp_path / "a.html").read_bytes(), (tmp_path / "b.html").read_bytes()
    assert a.replace(b"Kissmetrics catalog", b"Ours") == b
    assert embedded(a.decode())["history"] is False  # not in a git repository
    status, err = kmsnap(tmp_path, "docs", "--stale-days", "0")
    assert status == 1 and "--stale-days" in err


# --- timelines from git ---------------------------------------------------------------------


def git(repo: Path, *args: str, date: str) -> None:
    env = {**os.environ, **GIT_ENV, "HOME": str(repo.parent),
           "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", date="2024-01-01T00:00:00+00:00")
    versions = [catalog(), catalog(renamed=True), catalog(renamed=True, hidden=True)]
    for n, snap in enumerate(versions, start=1):
        save_snapshot(snap, repo / "snapshots")
        git(repo, "add", "-A", date="2024-01-01T00:00:00+00:00")
        git(repo, "commit", "-q", "-m", f"snapshot {n}", date=f"2024-0{n}-01T00:00:00+00:00")
    return repo


def test_timelines_from_git(repo: Path) -> None:
    status, err = kmsnap(repo, "docs", "--out", "site/index.html")
    assert status == 1 and "site/index.html" in err  # no such directory: one line
    (repo / "site").mkdir()
    status, err = kmsnap(repo, "docs", "--out", "site/index.html")
    assert status == 0, err
    data = embedded((repo / "site" / "index.html").read_text(encoding="utf-8"))
    assert data["history"] is True
    events = [(date[:10], what, detail) for date, _c, what, detail, _s in timeline_of(data, "e1")]
    assert events == [
        ("2024-01-01", "added", ""),
        ("2024-02-01", "renamed", "from 'Checkout finished'"),
        ("2024-03-01", "hidden", ""),
    ]
    assert [t[2] for t in timeline_of(data, "m1")] == ["added"]
    status, _ = kmsnap(repo, "docs", "--out", "plain.html", "--no-history")
    assert status == 0 and embedded((repo / "plain.html").read_text())["history"] is False


# --- in a real browser ----------------------------------------------------------------------

BROWSER = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                if p), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed "
                                   "(apt-get install chromium)")


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4): no
    WebDriver, no websocket library, no network port."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_browser, self._to = os.pipe()
        self._from, from_browser = os.pipe()

        def wire() -> None:  # in the child: the browser reads fd 3 and writes fd 4
            a, b = os.dup(to_browser), os.dup(from_browser)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._n = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             timeout: float = 120) -> dict[str, Any]:
        self._n += 1
        message: dict[str, Any] = {"id": self._n, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._next(deadline)
            if answer.get("id") == self._n:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))
            self.events.append(answer)

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer")
            ready, _, _ = select.select([self._from], [], [], left)
            if ready:
                chunk = os.read(self._from, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def wait_for(self, method: str, timeout: float = 120) -> dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open(self, url: str, width: int = 1280, height: int = 800) -> float:
        """Open ``url`` in a new tab; the seconds until its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.send(domain)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        started = time.monotonic()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        return time.monotonic() - started

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(json.dumps(params.get("exceptionDetails"))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                 "assert"):
                out.append(json.dumps(params.get("args"))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(json.dumps(params.get("entry"))[:500])
        return out

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to)
        os.close(self._from)


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Chromium]:
    assert BROWSER is not None
    chromium = Chromium(BROWSER, tmp_path / "profile")
    try:
        yield chromium
    finally:
        chromium.close()


@needs_browser
def test_page_in_a_browser(repo: Path, browser: Chromium) -> None:
    (repo / "site").mkdir()
    assert kmsnap(repo, "docs", "--out", "site/index.html")[0] == 0
    page = repo / "site" / "index.html"
    browser.open(page.as_uri())
    assert browser.eval("document.documentElement.getAttribute('data-ready')") == "1"
    assert browser.problems() == []
    assert browser.eval("document.getElementById('count').textContent") == "5 entities"
    # Search by a part of a name (any case) finds the entity, and only it.
    browser.eval("kmsnapSearch('CKOUT COMP')")
    rows = browser.eval("[...document.querySelectorAll('.row .name')].map(n => n.textContent)")
    assert rows == ["Checkout completed"]
    # A hostile name is text on the page: the literal characters, no element made of it.
    browser.eval("kmsnapSearch('alert(1)')")
    assert browser.eval("document.querySelector('.row .name').textContent") == SCRIPT_BREAK
    assert browser.eval("document.querySelectorAll('img, b, script:not([id])').length") == 1
    assert browser.eval("typeof window.alerted") == "undefined"
    tree = browser.eval("document.getElementById('tree').textContent")
    assert IMG in tree and "Acme <b>Inc</b>" in tree
    # The detail pane shows the fields and the timeline from git.
    browser.eval("kmsnapSearch('checkout'); document.querySelector('.row').click()")
    detail = browser.eval("document.getElementById('detail').textContent")
    assert "renamed from 'Checkout finished'" in detail and "hidden" in detail
    assert "Paid" in detail
    # Filters: hidden and no description.
    browser.eval("kmsnapSearch(''); document.getElementById('f-hidden').click()")
    assert browser.eval("document.getElementById('count').textContent") == "1 of 5 entities"
    assert browser.problems() == []


@needs_browser
def test_the_example_snapshot_in_a_browser(tmp_path: Path, browser: Chromium) -> None:
    """The committed example catalog (awkward and hostile names from the emulator)."""
    example = str(ROOT / "snapshots")
    assert kmsnap(tmp_path, "docs", example, "--out", "example.html", "--no-history")[0] == 0
    browser.open((tmp_path / "example.html").as_uri())
    assert browser.problems() == []
    assert browser.eval("document.getElementById('count').textContent") == "2000 entities"
    assert browser.eval("document.querySelectorAll('img').length") == 0
    browser.eval("kmsnapSearch('<'); document.querySelector('.row').click()")
    assert "<" in browser.eval("document.querySelector('#detail h2').textContent")
    assert browser.problems() == []


def big_catalog(n: int) -> Snapshot:
    """``n`` entities in 10 products of 2 accounts, with usage stats."""
    snap = Snapshot(api="http://127.0.0.1:1/core")
    for a in range(2):
        snap.add("account", {"id": f"acc-{a}", "name": f"Account {a}"})
    for p in range(10):
        snap.add("product", {"id": f"prod-{p}", "account_id": f"acc-{p % 2}",
                             "name": f"Product {p}", "environment": "production"})
    for i in range(n - 12):
        kind = ("event", "property", "metric")[i % 3]
        record: dict[str, Any] = {"id": f"{kind[0]}-{i:06d}", "product_id": f"prod-{i % 10}",
                                  "is_visible": i % 17 != 0,
                                  "description": None if i % 5 == 0 else f"What {i} means"}
        if kind == "metric":
            record.update(title=f"Metric number {i}", unit_type="count")
        else:
            record.update(name=f"{kind} name {i} signed up step", display_name=f"Step {i}")
            record["last_used_at"] = f"2026-0{1 + i % 9}-01T00:00:00Z"
            if kind == "property":
                record["type"] = "text"
        snap.add(kind, record)
    return snap


@needs_browser
@pytest.mark.slow
def test_a_hundred_thousand_entities_stay_usable(tmp_path: Path, browser: Chromium) -> None:
    page = tmp_path / "big.html"
    snap = big_catalog(100_000)
    built = time.monotonic()
    page.write_text(render_page(build_page_data(snap)), encoding="utf-8")
    built = time.monotonic() - built
    seconds = browser.open(page.as_uri())
    timing = browser.eval("window.kmsnapTiming")
    searches, found = [], []
    for query in ("name 4242", "SIGNED", "zzz-nothing", ""):
        searches.append(browser.eval(f"kmsnapSearch({query!r})"))
        found.append(browser.eval("window.kmsnapTiming.lastCount"))
    def matches(query: str) -> int:  # what the page searches: name, display name, id
        return sum(
            query.lower() in "\n".join(str(r.get(f) or "") for f in ("name", "title", "id",
                                                                    "display_name")).lower()
            for by_id in snap.entities.values() for r in by_id.values()
        )

    assert found == [matches("name 4242"), matches("SIGNED"), 0, 100_000]
    assert 0 < found[0] < found[1] < 100_000
    counts = browser.eval("document.querySelectorAll('.row').length")
    shown = ", ".join(f"{s:.0f} ms" for s in searches)
    print(f"\n100,000 entities: page {page.stat().st_size / 2**20:.1f} MiB built in "
          f"{built:.1f} s; load event {seconds:.2f} s, script ready {timing['load']:.0f} ms "
          f"(JSON parse {timing['parse']:.0f} ms); searches {shown}")
    assert browser.problems() == []
    assert counts < 200  # virtualised: only the rows in view exist
    assert seconds < 20 and max(searches) < 2000


def test_screenshot_in_docs_is_a_png() -> None:
    shot = ROOT / "docs" / "catalog-page.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/catalog-page.png" in (ROOT / "README.md").read_text(encoding="utf-8")
