"""The ``kmsnap demo`` scenario as a library: a week of catalog history in a new git repository,
pulled from the bundled emulator, and the example snapshot the repository ships in ``snapshots/``.

Nothing here prints: ``run_demo`` reports each step to a callback and returns a ``DemoResult``.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kmsnap.compare import compare_live, compare_sources, pull_selected
from kmsnap.diff.engine import ChangeSet, severity_at_least
from kmsnap.emulator import AWKWARD_NAMES, Catalog, Emulator, generate_catalog
from kmsnap.errors import ExitStatus, GitError, UsageError
from kmsnap.git.runner import run_git
from kmsnap.model import KINDS, Record, rel_for_kind
from kmsnap.render.changes import render_markdown
from kmsnap.sources.core.crawler import PullOptions, PullResult
from kmsnap.sources.v3 import Credentials, V3PullOptions

__all__ = [
    "DEMO_AUTHOR",
    "DEMO_EMAIL",
    "EXAMPLE_API",
    "EXAMPLE_SEED",
    "EXAMPLE_SIZE",
    "MIN_SIZE",
    "DemoOptions",
    "DemoResult",
    "DemoStep",
    "example_snapshot",
    "run_demo",
    "write_example_snapshot",
]

DEMO_AUTHOR = "kmsnap demo"
DEMO_EMAIL = "demo@kmsnap.invalid"
DEMO_TOKEN = "demo-token"
SNAPSHOT_DIR = "snapshots"
REVIEW_FILE = "kmsnap-review.md"
FAIL_ON = "any"  # kmsnap check's default --fail-on
MIN_SIZE = 60  # below this the generated catalog lacks something the scenario changes

# The example snapshot in the repository is the catalog ``kmsnap serve`` serves by default
# (kmsnap/cli/serve.py: --size 2000 --seed 0 --port 8765); a test checks the two agree.
EXAMPLE_SIZE = 2000
EXAMPLE_SEED = 0
EXAMPLE_API = "http://127.0.0.1:8765/core"

# Names the generator never makes (its events are "<verb> <noun>"), so additions stay additions.
NEW_EVENTS = ("started free trial", "invited a teammate", "exported a report")
# A plain generated name: safe to show in a sentence and to derive a new name from.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z ]*[A-Za-z]\Z")


@dataclass
class DemoOptions:
    """Where the demo repository goes (None: a new temporary directory) and the catalog."""

    directory: Path | None = None
    size: int = 500
    seed: int = 0
    source: str = "core"  # "v3": the REST API v3 emulator (no metrics, no property types)


@dataclass(frozen=True)
class DemoStep:
    """One step for a person: notes, then maybe a change set or a markdown comment, then notes."""

    key: str  # emulator, first-pull, edits, second-pull, diff, review, check
    title: str
    lines: tuple[str, ...] = ()
    changes: ChangeSet | None = None
    markdown: str | None = None
    after: tuple[str, ...] = ()


@dataclass
class DemoResult:
    """What the demo left behind and what it found."""

    repo: Path
    snapshot_dir: Path
    api: str  # the emulator's URL, dead once the demo returns
    entities: int
    commits: list[str] = field(default_factory=list)  # short ids, oldest first
    review: ChangeSet | None = None  # HEAD~1:snapshots -> snapshots
    markdown: str = ""
    markdown_path: Path | None = None
    drift: ChangeSet | None = None  # committed snapshot -> live catalog
    check_exit: int = int(ExitStatus.OK)
    fail_on: str = FAIL_ON
    edits: list[str] = field(default_factory=list)
    steps: list[DemoStep] = field(default_factory=list)
    elapsed: float = 0.0


Report = Callable[[DemoStep], None]


# ------------------------------------------------------------------------------- git


# A fixed identity, no signing and no hooks: the demo must commit on a machine without any
# global git configuration, and a user's signing or hook setup must not stop it.
_GIT_CONFIG = (
    "-c", f"user.name={DEMO_AUTHOR}", "-c", f"user.email={DEMO_EMAIL}",
    "-c", "commit.gpgsign=false", "-c", f"core.hooksPath={os.devnull}",
    "-c", "init.defaultBranch=main",
)


def _git(repo: Path, *args: str) -> str:
    # own_repo: the demo repository is the only one involved, whatever the caller's
    # environment says (inside a git hook GIT_DIR points elsewhere).
    proc = run_git(
        repo, [*_GIT_CONFIG, *args], own_repo=True,
        missing="git is not installed; kmsnap demo needs it to keep the history",
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        cause = detail[0] if detail else f"exit status {proc.returncode}"
        raise GitError(f"git {args[0]} in {repo} failed: {cause}")
    return proc.stdout.decode("utf-8", "replace").strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "--all", "--", SNAPSHOT_DIR)
    _git(repo, "commit", "--quiet", "--no-verify", "-m", message)
    return _git(repo, "rev-parse", "--short", "HEAD")


# In .git of a demo repository until the demo has finished: a demo interrupted half-way
# (``kmsnap demo --dir D | head``, Ctrl-C) leaves a repository the next run may start over.
UNFINISHED = "kmsnap-demo-unfinished"


def _prepare_dir(directory: Path | None) -> Path:
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="kmsnap-demo-"))
    if directory.exists() or directory.is_symlink():
        if not directory.is_dir():
            raise UsageError(f"--dir {directory}: exists and is not a directory")
        if (directory / ".git" / UNFINISHED).is_file() and not directory.is_symlink():
            _clear(directory)  # an interrupted demo's own leftovers, nothing of anyone else
        if any(directory.iterdir()):
            raise UsageError(
                f"--dir {directory}: not empty; give a new or empty directory (the demo "
                "creates a git repository there)"
            )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--dir {directory}: cannot create it: {exc.strerror}") from None
    return directory.resolve()


def _clear(directory: Path) -> None:
    import shutil

    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# -------------------------------------------------------------------------- pulling


def _pull(api: str, source: str = "core") -> PullResult:
    """Exactly the library call ``kmsnap pull`` makes (without a config file's filters);
    v3 unpaced: the demo's emulator has no rate limit."""
    if source == "v3":
        from kmsnap.emulator.v3 import PASSWORD, USERNAME

        login = Credentials(USERNAME, PASSWORD, origin="the demo")
        return pull_selected(V3PullOptions(credentials=login, api=api, per_minute=None))
    return pull_selected(PullOptions(api=api, token=DEMO_TOKEN))


def _save(result: PullResult, out_dir: Path) -> None:
    from kmsnap.snapshot.store import save_snapshot

    save_snapshot(result.snapshot, out_dir)


def _pulled_line(result: PullResult, out: str) -> str:
    counts = result.snapshot.counts()
    order = [k for k in KINDS if k in counts] + [k for k in counts if k not in KINDS]
    parts = ", ".join(f"{counts[k]} {rel_for_kind(k)}" for k in order)
    return (f"pulled {result.snapshot.size()} entities ({parts}) in {result.requests} "
            f"requests, {result.elapsed:.2f} s; wrote {out}/")


def _file_count(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------- a week of product work


@dataclass
class _Targets:
    product: Record
    renamed: Record
    recreated: Record
    removed: Record  # removed from the live catalog after the second commit: drift
    hidden: Record
    retyped: Record | None  # None on v3: no property types there
    metric: Record | None  # None on v3: no metrics there


def _plain(record: Record, field_name: str = "name") -> bool:
    name = record.get(field_name)
    return (isinstance(name, str) and _PLAIN.match(name) is not None
            and name not in AWKWARD_NAMES)


def _pick_targets(catalog: Catalog, source: str = "core") -> _Targets:
    """Entities with plain names in one product, so the diff reads like real product work
    (on v3, which has neither, no retyped property and no metric)."""
    records = catalog.records
    for product in records["product"].values():
        pid = product["id"]
        events = [r for r in records["event"].values() if r.get("product_id") == pid]
        names = [r.get("name") for r in events]
        plain = [r for r in events if _plain(r) and names.count(r["name"]) == 1]
        props = [r for r in records["property"].values()
                 if r.get("product_id") == pid and _plain(r)]
        hidden = [r for r in props if r.get("is_visible") is True]
        retyped = [r for r in props if r.get("type") == "text" and r not in hidden[:1]]
        metrics = [r for r in records["metric"].values()
                   if r.get("product_id") == pid and r.get("unit_type") == "numeric"
                   and _plain(r, "title")]
        if source == "v3" and len(plain) >= 3 and hidden:
            return _Targets(product, plain[0], plain[1], plain[2], hidden[0], None, None)
        if len(plain) >= 3 and hidden and retyped and metrics:
            return _Targets(product, plain[0], plain[1], plain[2], hidden[0], retyped[0],
                            metrics[0])
    raise UsageError(f"the catalog is too small for the demo; use --size {MIN_SIZE} or more")


def _quoted(record: Record, field_name: str = "name") -> str:
    return f'"{record.get(field_name)}"'


def _week_of_work(catalog: Catalog, targets: _Targets, seed: int,
                  visibility: str = "is_visible") -> list[str]:
    """Change the live catalog as a week of product work would; say what changed."""
    pid = targets.product["id"]
    edits = []
    for i, name in enumerate(NEW_EVENTS):
        catalog.add("event", {
            "product_id": pid, "name": name, "display_name": name.capitalize(),
            "description": None, "is_visible": True, "total": 40 * (i + 1),
            "first_used_at": "2024-06-03T09:00:00+00:00",
            "last_used_at": "2024-06-07T17:30:00+00:00",
            "first_sent_at": "2024-06-03T09:00:00+00:00",
            "last_sent_at": "2024-06-07T17:30:00+00:00",
        })
        edits.append(f"added event \"{name}\"")
    old = str(targets.renamed["name"])
    new = f"{old} v2"
    catalog.rename("event", targets.renamed["id"], new)
    edits.append(f"renamed event \"{old}\" to \"{new}\"")
    new_id = catalog.recreate("event", targets.recreated["id"])
    edits.append(f"re-created event {_quoted(targets.recreated)}: deleted, then created "
                 f"again under a new id ({new_id[:8]}…)")
    catalog.set_field("property", targets.hidden["id"], "is_visible", False)
    edits.append(f"hid property {_quoted(targets.hidden)} ({visibility}: true → false)")
    if targets.retyped is not None:
        catalog.set_field("property", targets.retyped["id"], "type", "number")
        edits.append(f"changed property {_quoted(targets.retyped)}'s type: text → number")
    if targets.metric is not None:
        catalog.set_field("metric", targets.metric["id"], "unit_type", "percent")
        edits.append(f"changed metric {_quoted(targets.metric, 'title')}'s unit_type: "
                     "numeric → percent")
    moved = catalog.touch_usage(seed=seed + 1)
    edits.append(f"traffic moved the usage counters of {moved} events and properties "
                 "(kept out of the snapshot: no change to review)")
    return edits


# ------------------------------------------------------------------------ the demo


def run_demo(options: DemoOptions, report: Report | None = None) -> DemoResult:
    """Run the whole job on a fresh emulator: pull, commit, change, pull, commit, diff, check.

    ``report`` receives each step as it completes. The emulator is stopped however this
    ends; the repository stays. Raises ``UsageError`` for a bad directory or size and
    ``GitError`` when git is missing or fails.
    """
    if options.size < MIN_SIZE:
        raise UsageError(f"--size must be at least {MIN_SIZE}, got {options.size}")
    started = time.perf_counter()
    if options.source not in ("core", "v3"):
        raise UsageError(f"--source must be core or v3, not {options.source!r}")
    catalog = generate_catalog(size=options.size, seed=options.seed)
    # before creating anything: a bad size leaves no trace
    targets = _pick_targets(catalog, options.source)
    repo = _prepare_dir(options.directory)
    emulator: Emulator
    if options.source == "v3":
        from kmsnap.emulator.v3 import EmulatorV3

        emulator = EmulatorV3(catalog, seed=options.seed, rate_per_minute=None)
    else:
        emulator = Emulator(catalog, token=DEMO_TOKEN, seed=options.seed)
    emulator.start()
    try:
        result = DemoResult(repo=repo, snapshot_dir=repo / SNAPSHOT_DIR, api=emulator.base_url,
                            entities=catalog.size())

        def emit(step: DemoStep) -> None:
            result.steps.append(step)
            if report is not None:
                report(step)

        api = "REST API v3" if options.source == "v3" else "Core API"
        emit(DemoStep("emulator", "Start the Kissmetrics API emulator", (
            f"serving a generated catalog of {catalog.size()} entities at {emulator.base_url}",
            f"(a real {api} on a loopback port: the same HTTP the real one speaks)",
        )))
        _run(options, emulator, targets, result, emit)
        (repo / ".git" / UNFINISHED).unlink(missing_ok=True)  # finished: the user's now
        result.elapsed = time.perf_counter() - started
        return result
    finally:
        emulator.stop()


def _run(options: DemoOptions, emulator: Emulator, targets: _Targets, result: DemoResult,
         emit: Report) -> None:
    from kmsnap.git.source import open_source
    from kmsnap.snapshot.store import DirectorySource

    repo, snapshots = result.repo, result.snapshot_dir
    _git(repo, "init", "--quiet")
    (repo / ".git" / UNFINISHED).write_text("a kmsnap demo is running or was interrupted\n")
    source = options.source
    first = _pull(emulator.base_url, source)
    _save(first, snapshots)
    result.commits.append(_commit(repo, "Catalog snapshot"))
    emit(DemoStep("first-pull", "Pull the catalog and commit it", (
        f"git init {repo}",
        _pulled_line(first, SNAPSHOT_DIR),
        f"{_file_count(snapshots)} YAML files, one per account, product and kind",
        f"commit {result.commits[-1]}  Catalog snapshot",
    )))

    result.edits = _week_of_work(emulator.catalog, targets, options.seed,
                                 "visible" if source == "v3" else "is_visible")
    emit(DemoStep("edits", "A week of product work (in the live catalog)",
                  tuple(f"- {edit}" for edit in result.edits)))

    second = _pull(emulator.base_url, source)
    _save(second, snapshots)
    message = "Catalog snapshot after a week of product work"
    result.commits.append(_commit(repo, message))
    emit(DemoStep("second-pull", "Pull again and commit", (
        _pulled_line(second, SNAPSHOT_DIR),
        f"commit {result.commits[-1]}  {message}",
    )))

    old_src = open_source(f"HEAD~1:{SNAPSHOT_DIR}", cwd=repo)
    new_src = open_source(SNAPSHOT_DIR, cwd=repo)
    review = compare_sources(old_src, new_src)
    result.review = review
    emit(DemoStep("diff", "What changed between the two commits", (
        f"$ kmsnap diff HEAD~1:{SNAPSHOT_DIR} {SNAPSHOT_DIR}",
    ), changes=review))

    result.markdown = render_markdown(review)
    result.markdown_path = repo / REVIEW_FILE
    result.markdown_path.write_text(result.markdown, encoding="utf-8")
    emit(DemoStep("review", "The comment a pull request would get", (
        f"$ kmsnap diff HEAD~1:{SNAPSHOT_DIR} {SNAPSHOT_DIR} --format markdown "
        f"> {REVIEW_FILE}",
    ), markdown=result.markdown, after=(f"the whole comment: {result.markdown_path}",)))

    removed = emulator.catalog.remove("event", targets.removed["id"])
    live = _pull(emulator.base_url, source)
    # As kmsnap check does: the live catalog compared in memory through the store's files.
    drift = compare_live(DirectorySource(snapshots, label=SNAPSHOT_DIR), live.snapshot)
    result.drift = drift
    failing = [c for c in drift.changes if severity_at_least(c, FAIL_ON)]
    result.check_exit = int(ExitStatus.CHANGES if failing else ExitStatus.OK)
    verdict = _verdict(result.check_exit, failing)
    emit(DemoStep("check", "What kmsnap check says about the live catalog", (
        f"meanwhile someone deleted event {_quoted(removed)} in Kissmetrics, and nobody "
        "committed a snapshot since",
        f"$ kmsnap check --snapshot {SNAPSHOT_DIR}",
    ), changes=drift, after=(verdict,)))


def _verdict(exit_code: int, failing: Sequence[object]) -> str:
    if exit_code == int(ExitStatus.OK):
        return "exit 0: no drift; CI stays green"
    return (f"exit {exit_code}: drift at or above --fail-on {FAIL_ON} ({len(failing)} "
            f"change{'s' if len(failing) != 1 else ''}); the CI job fails and says what moved")


# ----------------------------------------------------------------- the example snapshot


def example_snapshot() -> PullResult:
    """Pull the default ``kmsnap serve`` catalog through the real HTTP emulator.

    The emulator listens on a free port (a fixed one would collide with anything else
    running), and the snapshot's ``api`` is then set to ``EXAMPLE_API``, the URL
    ``kmsnap serve`` prints by default, so the example's bytes never depend on the port.
    """
    with Emulator(size=EXAMPLE_SIZE, seed=EXAMPLE_SEED, token=DEMO_TOKEN) as emulator:
        result = _pull(emulator.base_url)
    result.snapshot.api = EXAMPLE_API
    return result


def write_example_snapshot(out_dir: Path) -> PullResult:
    """Write the example snapshot to ``out_dir`` (atomically, as ``kmsnap pull`` writes)."""
    result = example_snapshot()
    _save(result, out_dir)
    return result
