"""Regenerate the example outputs and option tables in README.md and docs/*.md from the code.

Every block between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated -->`` in
README.md or a page under docs/ (each block lives in exactly one of them) is produced here:
the option tables from the typer command tree, the outputs by really running ``kmsnap``
(in-process, through ``kmsnap.cli.run``) against the bundled emulator serving a small fixed
catalog, in a temporary git repository with fixed commit dates. What varies between runs is
normalised: the emulator's port becomes 8765, durations become ``0.1 s``, the temporary
directory becomes ``~/catalog`` and the Python interpreter ``python3``.

``tests/test_docs.py`` regenerates every block and fails when one differs from its file.

Usage:
    python scripts/gen_docs.py           # rewrite the blocks in README.md and docs/*.md
    python scripts/gen_docs.py --check   # exit 1 when a block is out of date
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
BLOCK = re.compile(
    r"(<!-- BEGIN generated: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- END generated -->)",
    re.S,
)
TOKEN = "demo-token"
SHOWN_PORT = 8765
SHOWN_HOME = "~/catalog"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ann Analyst",
    "GIT_AUTHOR_EMAIL": "ann@example.com",
    "GIT_COMMITTER_NAME": "Ann Analyst",
    "GIT_COMMITTER_EMAIL": "ann@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
# Environment variables that would change what the commands print.
SCRUBBED = (
    "KMSNAP_API", "KMSNAP_SNAPSHOT_DIR", "KMSNAP_FAIL_ON", "KMSNAP_CONCURRENCY",
    "KMSNAP_PAGE_SIZE", "KMSNAP_MAX_RPS", "KMSNAP_TIMEOUT", "KISSMETRICS_TOKEN",
    "GITHUB_STEP_SUMMARY", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE",
)


# --- the example catalog -----------------------------------------------------------------


def _uid(prefix: str, n: int) -> str:
    """A UUID-shaped id whose first 8 characters (the slug's) are ``prefix``."""
    return f"{prefix}-{n:04x}-4{n:03x}-8000-{n:012x}"


ACME = _uid("7f3a9c2e", 1)
WEB = _uid("3b9e0c44", 2)
MOBILE = _uid("c8f027c9", 3)


def example_catalog():  # -> kmsnap.emulator.Catalog
    """One account, two products and a few of each kind; events carry usage counters."""
    from kmsnap.emulator import Catalog

    def event(n: int, pid: str, name: str, description: str | None, total: int) -> dict:
        return {
            "id": _uid(f"e{n:07x}", n), "product_id": pid, "name": name, "display_name": name,
            "description": description, "is_visible": True, "total": total,
            "first_used_at": "2025-01-06T10:00:00Z", "last_used_at": "2026-04-30T18:12:00Z",
        }

    def prop(n: int, name: str, type_: str) -> dict:
        return {
            "id": _uid(f"f{n:07x}", n), "product_id": WEB, "name": name, "display_name": name,
            "description": None, "is_visible": True, "type": type_,
        }

    def metric(n: int, title: str, unit: str, color: str) -> dict:
        return {
            "id": _uid(f"d{n:07x}", n), "product_id": WEB, "title": title, "description": None,
            "is_visible": True, "unit_type": unit, "status": "ready", "color": color,
            "sort_index": n,
        }

    records = {
        "account": [{"id": ACME, "name": "Acme Inc", "status": "active",
                     "created_at": "2024-03-01T09:00:00Z"}],
        "product": [
            {"id": WEB, "account_id": ACME, "name": "Web app", "url": "https://acme.example",
             "status": "active", "environment": "production", "timezone": "Europe/Paris"},
            {"id": MOBILE, "account_id": ACME, "name": "Mobile app", "url": None,
             "status": "active", "environment": "production", "timezone": "Europe/Paris"},
        ],
        "report": [{"id": _uid("b0000001", 1), "account_id": ACME, "product_id": WEB,
                    "name": "Signup funnel", "report_type": "funnel"}],
        "event": [
            event(1, WEB, "Signed up", "A new account was created", 5120),
            event(2, WEB, "Viewed pricing", None, 20311),
            event(3, WEB, "Started checkout", None, 812),
            event(4, WEB, "Legacy click", "Old homepage button", 3),
            event(5, MOBILE, "Opened app", None, 40992),
        ],
        "property": [prop(1, "Plan", "text"), prop(2, "Referrer", "text")],
        "metric": [metric(1, "Conversion rate", "percent", "#00aa00"),
                   metric(2, "Revenue", "currency", "#0000ff")],
    }
    return Catalog({kind: {r["id"]: r for r in recs} for kind, recs in records.items()})


def a_week_of_work(catalog) -> None:  # catalog: kmsnap.emulator.Catalog
    """What changes between the two pulls: one change of each sort and severity."""
    ids = {(kind, r.get("name") or r.get("title")): r["id"]
           for kind, by_id in catalog.records.items() for r in by_id.values()}
    catalog.rename("event", ids["event", "Viewed pricing"], "Pricing viewed")
    catalog.recreate("event", ids["event", "Started checkout"])
    catalog.remove("event", ids["event", "Legacy click"])
    catalog.set_field("event", ids["event", "Signed up"], "description",
                      "A new account was created (any plan)")
    catalog.add("event", {"id": _uid("e0000006", 6), "product_id": WEB,
                          "name": "Invited teammate", "display_name": "Invited teammate",
                          "description": None, "is_visible": True, "total": 17})
    catalog.set_field("property", ids["property", "Plan"], "type", "number")
    catalog.set_field("property", ids["property", "Referrer"], "is_visible", False)
    catalog.set_field("metric", ids["metric", "Revenue"], "color", "#3366ff")
    catalog.touch_usage(seed=1)  # traffic: usage counters move, and no diff shows it


# --- running kmsnap ----------------------------------------------------------------------


class Session:
    """Runs ``kmsnap`` in-process in a work directory and records console transcripts."""

    def __init__(self, home: Path, api: str) -> None:
        self.home = home
        self.api = api
        # Commit ids depend on the snapshot header, which names the emulator's random port:
        # each one is shown as a stand-in made from its message and date.
        self.shas: dict[str, str] = {}

    def normalise(self, text: str) -> str:
        port = self.api.split(":")[2].split("/")[0]
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{SHOWN_PORT}")
        for real, shown in self.shas.items():
            for n in (40, 12, 7):
                text = text.replace(real[:n], shown[:n])
        text = text.replace(str(self.home.resolve()), SHOWN_HOME)
        text = text.replace(str(self.home), SHOWN_HOME)
        text = text.replace(shlex.quote(sys.executable), "python3")
        text = re.sub(r"\b\d+\.\d+ s\b", "0.1 s", text)
        return text

    def run(self, *args: str, show: str | None = None, stderr: bool = True) -> tuple[int, str]:
        """(exit status, transcript): ``$ kmsnap ARGS``, the output, ``exit N`` when not 0."""
        from kmsnap.cli import run

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = run(list(args))
        command = show or "kmsnap " + " ".join(shlex.quote(a) for a in args)
        text = out.getvalue() + (err.getvalue() if stderr else "")
        lines = [f"$ {command}", text.rstrip("\n")]
        if status:
            lines.append(f"(exit {status})")
        return status, self.normalise("\n".join(line for line in lines if line) + "\n")

    def output(self, *args: str) -> str:
        """Only what the command writes to stdout (for files shown as they are)."""
        return self.run(*args, stderr=False)[1].split("\n", 1)[1]

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c",
                               "commit.gpgsign=false", *args], cwd=self.home,
                              env={**os.environ, **GIT_ENV}, capture_output=True, check=True)
        return proc.stdout.decode()

    def commit(self, message: str, date: str) -> None:
        self.git("add", "--all")
        with _env({"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}):
            self.git("commit", "--quiet", "-m", message)
        real = self.git("rev-parse", "HEAD").strip()
        self.shas[real] = hashlib.sha1(f"{message} {date}".encode()).hexdigest()


@contextlib.contextmanager
def _env(values: dict[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def fence(text: str, lang: str = "console") -> str:
    return f"```{lang}\n{text.rstrip(chr(10))}\n```\n"


def quote(text: str) -> str:
    """``text`` as a markdown blockquote, so that it renders as it would in a comment."""
    return "".join(f"> {line}\n" if line else ">\n" for line in text.rstrip("\n").split("\n"))


def tree(directory: Path, limit: int = 40) -> str:
    """The files of a directory as an indented listing, directories first."""
    lines = [f"{directory.name}/"]

    def walk(path: Path, depth: int) -> None:
        entries = sorted(path.iterdir(), key=lambda p: (p.is_file(), p.name))
        for entry in entries:
            lines.append("  " * depth + entry.name + ("/" if entry.is_dir() else ""))
            if entry.is_dir():
                walk(entry, depth + 1)

    walk(directory, 1)
    return "\n".join(lines[:limit]) + "\n"


# --- the blocks ----------------------------------------------------------------------------


def option_tables() -> dict[str, str]:
    """``options-<command>``: every option of every visible command, as ``--help`` shows it."""
    import typer.main
    from typer import _click as click

    from kmsnap.cli import app

    group = typer.main.get_command(app)
    root_ctx = click.Context(group, info_name="kmsnap")
    blocks = {"options-kmsnap": _table(group, root_ctx)}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if command.hidden:
            continue
        ctx = click.Context(command, info_name=name, parent=root_ctx)
        usage = command.get_usage(ctx).removeprefix("Usage: ").strip()
        blocks[f"options-{name}"] = f"`{usage}`\n\n" + _table(command, ctx)
    return blocks


def _table(command, ctx) -> str:
    rows = ["| option | what it does |", "|---|---|"]
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        help_text = help_text.replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{names.replace('|', chr(92) + '|')}` | {help_text} |")
    return "\n".join(rows) + "\n"


def command_outputs() -> dict[str, str]:
    """Real outputs: pull, check, diff (4 formats), log, init and the snapshot files."""
    from kmsnap.emulator import Emulator

    blocks: dict[str, str] = {}
    scrub: dict[str, str | None] = dict.fromkeys(SCRUBBED)
    scrub.update({"NO_COLOR": "1", "KISSMETRICS_TOKEN": TOKEN, "COLUMNS": "100"})
    with tempfile.TemporaryDirectory(prefix="kmsnap-docs-") as tmp, _env(scrub):
        home = Path(tmp) / "catalog"
        home.mkdir()
        with Emulator(example_catalog(), token=TOKEN) as emu, _cwd(home):
            api = emu.base_url
            s = Session(home, api)
            s.git("init", "--quiet")
            _, blocks["pull"] = s.run("pull", "--api", api)
            snap = home / "snapshots"
            blocks["snapshot-tree"] = fence(tree(snap), "text")
            blocks["snapshot-header"] = fence(s.normalise((snap / "kmsnap.yaml").read_text()),
                                              "yaml")
            web_dir = next(snap.glob("*/web-app-*"))
            events = (web_dir / "events.yaml").read_text().split("\n- ")[:2]
            blocks["snapshot-events"] = fence("\n- ".join(events) + "\n# ...", "yaml")
            s.commit("Catalog snapshot", "2026-05-04T05:17:00Z")

            a_week_of_work(emu.catalog)
            _, blocks["check"] = s.run("check", "--api", api, "--fail-on", "breaking")

            s.run("pull", "--api", api, "--with-stats", "--quiet")
            blocks["snapshot-stats"] = fence(
                "\n".join((web_dir / "events.stats.yaml").read_text().split("\n")[:5]) + "\n# ...",
                "yaml",
            )
            s.run("pull", "--api", api, "--quiet")
            s.commit("Kissmetrics catalog: 1 added, 1 removed, 4 changed, 1 renamed, 1 recreated",
                     "2026-05-11T05:17:00Z")

            old_new = ("HEAD~1:snapshots", "snapshots")
            _, blocks["diff-text"] = s.run("diff", *old_new)
            comment = s.output("diff", "--format", "markdown", *old_new)
            blocks["diff-markdown"] = fence(comment, "markdown")
            blocks["review-comment"] = quote(comment)
            _, blocks["diff-json"] = s.run("diff", "--format", "json", "--kind", "property",
                                           *old_new)
            _, blocks["diff-github"] = s.run("diff", "--format", "github", "--kind", "event",
                                             *old_new)
            _, blocks["diff-exit-code"] = s.run("diff", "--exit-code", "--kind", "metric",
                                                *old_new)
            _, blocks["log"] = s.run("log")
            _, blocks["log-entity"] = s.run("log", "--entity", "Started checkout")
            _, blocks["show"] = s.run("show", "Started checkout")
            _, blocks["init"] = s.run("init", "--fail-on", "breaking", "--git-driver")
            with _env({"KISSMETRICS_TOKEN": "not-the-token"}):
                _, blocks["error-401"] = s.run("pull", "--api", api)
            _, blocks["error-http"] = s.run("pull", "--api", "http://kissmetrics.example/core")
            broken = next(snap.glob("*/web-app-*/events.yaml"))
            broken.write_text("<<<<<<< HEAD\n" + broken.read_text(), encoding="utf-8")
            _, blocks["error-broken"] = s.run("diff", "HEAD:snapshots", "snapshots")
        for name in ("pull", "check", "diff-text", "diff-json", "diff-github", "diff-exit-code",
                     "log", "log-entity", "show", "init", "error-401", "error-http",
                     "error-broken"):
            blocks[name] = fence(blocks[name])
    return blocks


def demo_output() -> dict[str, str]:
    """``kmsnap demo``: its first four sections and its last, as a person sees them."""
    scrub: dict[str, str | None] = dict.fromkeys(SCRUBBED)
    scrub.update({"NO_COLOR": "1", "COLUMNS": "100"})
    with tempfile.TemporaryDirectory(prefix="kmsnap-docs-") as tmp, _env(scrub), _cwd(Path(tmp)):
        home = Path(tmp) / "kmsnap-demo"
        s = Session(home, "http://127.0.0.1:0/core")
        _, text = s.run("demo", "--dir", str(home), show="kmsnap demo")
    text = text.replace(SHOWN_HOME, "/tmp/kmsnap-demo")
    text = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{SHOWN_PORT}", text)
    text = re.sub(r"\b\d+\.\d+ s\b", "0.1 s", text)
    stand_ins = iter(("1a2b3c4", "5d6e7f8"))
    text = re.sub(r"^commit [0-9a-f]{7,}", lambda m: f"commit {next(stand_ins)}", text,
                  flags=re.M)
    head, _, rest = text.partition("\n== 5.")
    tail = "== 8." + rest.partition("\n== 8.")[2]
    elided = ("\n[... 5. the diff, 6. the pull-request comment, 7. what kmsnap check says "
              "(exit 2) ...]\n\n")
    return {"demo": fence(head + elided + tail)}


def catalog_outputs() -> dict[str, str]:
    """``kmsnap export`` and ``kmsnap compare`` on a small staging/production snapshot."""
    from kmsnap.model import Snapshot
    from kmsnap.snapshot.store import save_snapshot

    snap = Snapshot(api="https://api.kissmetrics.com/core")
    snap.add("account", {"id": ACME, "name": "Acme Inc"})
    staging = _uid("5a9e0c44", 4)
    for pid, name, env in ((staging, "Web app (staging)", "staging"),
                           (WEB, "Web app", "production")):
        snap.add("product", {"id": pid, "account_id": ACME, "name": name, "environment": env})
    rows = (
        (staging, 1, "Signed up", "A new account", True),
        (staging, 2, "debug_click", None, True),
        (staging, 3, "=HYPERLINK(\"http://x.example\")", None, True),
        (WEB, 4, "signed up", "A new account (any plan)", True),
        (WEB, 5, "Legacy click", None, False),
        (WEB, 6, "=HYPERLINK(\"http://x.example\")", None, True),
    )
    for pid, n, name, description, visible in rows:
        snap.add("event", {"id": _uid(f"e{n:07x}", n), "product_id": pid, "name": name,
                           "display_name": None, "description": description,
                           "is_visible": visible})
    for pid, n, type_ in ((staging, 1, "text"), (WEB, 2, "number")):
        snap.add("property", {"id": _uid(f"f{n:07x}", n), "product_id": pid, "name": "Plan",
                              "type": type_, "is_visible": True})
    blocks: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="kmsnap-docs-") as tmp, _env(dict.fromkeys(SCRUBBED)):
        home = Path(tmp) / "catalog"
        save_snapshot(snap, home / "snapshots")
        with _cwd(home):
            s = Session(home, f"http://127.0.0.1:{SHOWN_PORT}/core")
            _, text = s.run("export", "--kind", "event", "--format", "csv")
            blocks["export"] = fence(text.replace("\r\n", "\n"))
            _, blocks["compare"] = s.run("compare", "--require", "left-in-right")
            blocks["compare"] = fence(blocks["compare"])
            blocks["readme-compare"] = blocks["compare"]  # the README shows the matrix too
            _, text = s.run("find", "kind:event", "-hidden:true", "description:none")
            blocks["find"] = fence(text)
    return blocks


def static_outputs() -> dict[str, str]:
    """Outputs that need no catalog: the manual git driver recipe."""
    from kmsnap.git.driver import manual_recipe

    return {"git-driver-recipe": fence(manual_recipe(), "sh")}


GENERATORS: tuple[Callable[[], dict[str, str]], ...] = (
    option_tables, command_outputs, demo_output, static_outputs, catalog_outputs,
)


def generate() -> dict[str, str]:
    """Every block: name -> the text between its markers."""
    blocks: dict[str, str] = {}
    for make in GENERATORS:
        blocks.update(make())
    return blocks


def doc_files() -> list[Path]:
    """The files that may hold generated blocks: README.md and every page under docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def update(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each generated block replaced; every marker must have a generator."""
    unknown = [m["name"] for m in BLOCK.finditer(text) if m["name"] not in blocks]
    if unknown:
        raise KeyError(f"no generator for block(s): {', '.join(unknown)}")
    return BLOCK.sub(lambda m: m.group(1) + blocks[m["name"]] + m.group(4), text)


def blocks_in(text: str) -> dict[str, str]:
    """The generated blocks as they are in ``text``."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def main(argv: list[str]) -> int:
    blocks = generate()
    stale: list[str] = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        new = update(text, blocks)
        if new == text:
            continue
        name = path.relative_to(ROOT).as_posix()
        stale.append(name)
        if "--check" not in argv:
            path.write_text(new, encoding="utf-8")
            print(f"{name} updated")
    if "--check" in argv and stale:
        print(f"out of date: {', '.join(stale)}: run python scripts/gen_docs.py", file=sys.stderr)
        return 1
    if not stale:
        print("README.md and docs/*.md are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
