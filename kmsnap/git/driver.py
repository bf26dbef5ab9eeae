"""A git diff driver for snapshot files, so ``git diff`` and ``git log -p`` read like kmsnap.

Two halves under one driver name (``diff=kmsnap`` in ``.gitattributes``): ``textconv`` turns a
snapshot file into one readable block per entity, sorted by id so a rename stays in place (used
by ``git log -p``, ``git show``, blame); the external ``command`` runs the diff engine on the two
versions of a file (used by ``git diff``, and ``git log -p --ext-diff``). The files stay YAML.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import stat
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from kmsnap.errors import GitError, KmsnapError, SnapshotError, UsageError
from kmsnap.git.source import git_output, repo_root
from kmsnap.model import Record, Snapshot, entity_name, kind_for_rel, name_field
from kmsnap.snapshot.parse import MAX_FILE_BYTES, parse_file, read_bounded

__all__ = [
    "DRIVER",
    "TEXTCONV_FORMAT",
    "driver_config",
    "external_diff",
    "gitattributes_line",
    "main",
    "manual_recipe",
    "setup_git_driver",
    "textconv",
]

DRIVER = "kmsnap"
# Part of the textconv command: git's textconv cache is keyed by the command, so bumping this
# when the rendering changes throws away conversions cached by the old one.
TEXTCONV_FORMAT = 1
# Hunk headers (``@@ ... @@ event "Signed up" [e1]``) name the entity: entity header lines are
# the only lines that start in column 0 (fields are indented, the banner starts with ``#``).
XFUNCNAME = "^[^ #].*$"
_SAFE_DIR = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
# git < 2.40 names temporary blobs "XXXXXX_events.yaml"; newer ones keep the name in a temp dir.
_TEMP_PREFIX = re.compile(r"^[A-Za-z0-9]{6}_")


# --- reading one file -------------------------------------------------------------------


def file_kind(name: str) -> tuple[str | None, bool]:
    """(kind, is_stats) for a snapshot file name: ``events.yaml`` -> ("event", False).

    None for the ``kmsnap.yaml`` header and anything that is not YAML.
    """
    base = PurePosixPath(name.replace("\\", "/")).name
    if not base.endswith(".yaml"):
        return None, False
    stem = base[: -len(".yaml")]
    stats = stem.endswith(".stats")
    if stats:
        stem = stem[: -len(".stats")]
    known = {"account", "product", "kmsnap"}
    if stem not in known and not _looks_like_rel(stem) and _TEMP_PREFIX.match(stem):
        stem = stem[7:]
    if stem == "kmsnap" or not stem:
        return None, False
    if stem in ("account", "product"):
        return stem, stats
    return kind_for_rel(stem), stats


def _looks_like_rel(stem: str) -> bool:
    return kind_for_rel(stem) != stem  # a documented collection: "events", "metrics", ...


def _records(value: Any, name: str) -> list[Record]:
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
    if items is None or not all(isinstance(item, dict) and "id" in item for item in items):
        raise SnapshotError("not a list of entities with ids", path=name)
    return items


# --- textconv ---------------------------------------------------------------------------


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    # Nested mappings (an account's contact) become dotted lines, so one line shows one change.
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out.extend(_flatten(f"{prefix}.{key}", item))
        return out
    return [(prefix, value)]


def render_entities(kind: str, records: Sequence[Record]) -> str:
    """One block per entity, sorted by id: a header naming it, then its fields, indented."""
    from kmsnap.render.base import escape, quote, show_value

    title = name_field(kind)
    blocks = []
    for record in sorted(records, key=lambda r: str(r.get("id"))):
        lines = [f"{kind} {quote(entity_name(kind, record))} [{escape(str(record.get('id')))}]"]
        for key, value in record.items():
            if key in ("id", title):
                continue
            for path, item in _flatten(key, value):
                lines.append(f"    {escape(path)}: {show_value(item)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def textconv(data: bytes, name: str) -> bytes:
    """The readable form git diffs instead of the file; the file itself when it is not one."""
    kind, _stats = file_kind(name)
    if kind is None:
        return data
    try:
        records = _records(parse_file(data, name), name)
    except KmsnapError:
        return data  # a broken or foreign file: git still shows its lines
    count = len(records)
    banner = f"# kmsnap: {count} {kind} {'entity' if count == 1 else 'entities'}, sorted by id\n\n"
    return (banner + render_entities(kind, records)).encode("utf-8", "surrogateescape")


# --- external diff ----------------------------------------------------------------------


def _snapshot(data: bytes | None, kind: str, name: str, stats: bool) -> Snapshot:
    snap = Snapshot()
    if data is None:
        return snap
    for record in _records(parse_file(data, name), name):
        if stats:
            snap.stats.setdefault(kind, {})[str(record["id"])] = dict(record)
            snap.writable(kind)[str(record["id"])] = {"id": record["id"]}
        else:
            snap.add(kind, record)
    return snap


def external_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """The report for one file: kmsnap's change list, or a line diff when it is not entities.

    ``None`` is a side where the file does not exist (``/dev/null`` to git).
    """
    from kmsnap.diff.engine import diff_snapshots
    from kmsnap.history.view import render_changes_text

    header = f"kmsnap diff a/{path} b/{path}\n"
    kind, stats = file_kind(path)
    if kind is not None:
        try:
            old_snap = _snapshot(old, kind, f"a/{path}", stats)
            new_snap = _snapshot(new, kind, f"b/{path}", stats)
        except KmsnapError as exc:
            return header + f"(not compared as a snapshot: {exc})\n" + _line_diff(path, old, new)
        cs = diff_snapshots(old_snap, new_snap, with_stats=stats)
        if not cs.changes:
            return header + "  (no catalog changes)\n"
        counts = ", ".join(f"{n} {word}" for word, n in cs.summary().items() if n)
        body = "\n".join(render_changes_text(cs.changes, "  "))
        return f"{header}{body}\n  {counts}\n"
    return header + _line_diff(path, old, new)


def _line_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    def lines(data: bytes | None) -> list[str]:
        return [] if data is None else data.decode("utf-8", "replace").splitlines(keepends=True)

    out = difflib.unified_diff(lines(old), lines(new), f"a/{path}", f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


# --- setup ------------------------------------------------------------------------------


def driver_config(python: str | None = None) -> dict[str, str]:
    """The ``git config`` entries of the driver, run with ``python`` (default: this one)."""
    exe = shlex.quote(python or sys.executable)
    base = f"{exe} -m kmsnap.gitdriver"
    return {
        f"diff.{DRIVER}.textconv": f"{base} textconv --format-version {TEXTCONV_FORMAT}",
        f"diff.{DRIVER}.cachetextconv": "true",
        f"diff.{DRIVER}.xfuncname": XFUNCNAME,
        f"diff.{DRIVER}.command": f"{base} diff",
    }


def gitattributes_line(snapshot_dir: str = "snapshots") -> str:
    """The ``.gitattributes`` line that sends the snapshot's files through the driver."""
    directory = snapshot_dir.strip("/")
    if directory in ("", "."):
        return f"**/*.yaml diff={DRIVER}"
    if not _SAFE_DIR.fullmatch(directory) or ".." in directory.split("/"):
        raise UsageError(
            f"snapshot directory {snapshot_dir!r}: use letters, digits, '.', '_', '-' and '/'"
        )
    return f"{directory}/**/*.yaml diff={DRIVER}"


def manual_recipe(snapshot_dir: str = "snapshots", python: str = "python3") -> str:
    """What ``setup_git_driver`` does, as commands a person can run (for the docs)."""
    lines = [
        "# 1. Once per repository, committed: send snapshot files through the driver.",
        f"echo '{gitattributes_line(snapshot_dir)}' >> .gitattributes",
        "",
        "# 2. In each clone (local config; use the python that has kmsnap installed):",
    ]
    for key, value in driver_config(python).items():
        lines.append(f"git config {key} {shlex.quote(value)}")
    lines += [
        "",
        "# git diff       -> kmsnap's change list per file (the external command)",
        "# git log -p     -> one readable block per entity (textconv);",
        "#                   git log -p --ext-diff for the change list",
        "# --no-ext-diff / --no-textconv give the raw YAML diff back.",
    ]
    return "\n".join(lines) + "\n"


def setup_git_driver(repo: Path, snapshot_dir: str = "snapshots") -> list[str]:
    """Add the ``.gitattributes`` line and the local git config of the driver; idempotent.

    ``snapshot_dir`` is relative to ``repo`` (a directory in the work tree). Returns one line
    per thing done or found already done.
    """
    top = repo_root(repo)
    where = (repo.resolve() / snapshot_dir).resolve()
    try:
        rel = where.relative_to(top.resolve()).as_posix()
    except ValueError:
        raise GitError(f"{snapshot_dir}: not inside the git repository at {top}") from None
    line = gitattributes_line("" if rel == "." else rel)
    notes: list[str] = []
    attributes = top / ".gitattributes"
    try:
        text = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    except OSError as exc:
        raise GitError(f"cannot read {attributes}: {exc.strerror}") from None
    if line in (entry.strip() for entry in text.splitlines()):
        notes.append(f".gitattributes already has: {line}")
    else:
        sep = "" if not text or text.endswith("\n") else "\n"
        try:
            attributes.write_text(f"{text}{sep}{line}\n", encoding="utf-8")
        except OSError as exc:
            raise GitError(f"cannot write {attributes}: {exc.strerror}") from None
        notes.append(f".gitattributes: added {line} (commit it)")
    for key, value in driver_config().items():
        current = git_output(top, ["config", "--local", "--get", key], check=False)
        if current is not None and current.decode().rstrip("\n") == value:
            notes.append(f"git config {key} already set")
            continue
        git_output(top, ["config", "--local", key, value])
        notes.append(f"git config {key} = {value}")
    return notes


# --- the process git runs ---------------------------------------------------------------


def _read(path: str) -> bytes | None:
    if path == "/dev/null":
        return None
    # Bounded, and never blocking: a FIFO or device named like a snapshot file is refused.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SnapshotError("not a regular file", path=path)
        return read_bounded(fh, info.st_size, MAX_FILE_BYTES)  # more is refused by the parser


def main(argv: Sequence[str] | None = None, out: Any = None) -> int:
    """Entry point for git: ``textconv FILE`` or ``diff PATH OLD HEX MODE NEW HEX MODE``.

    Kept apart from the typer CLI so git's one-process-per-file calls start fast. Never fails
    loudly: a non-zero exit would stop ``git diff`` for every other file too.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    stream = out if out is not None else sys.stdout.buffer
    try:
        if args[:1] == ["textconv"] and len(args) >= 2:
            name = args[-1]
            data = _read(name) or b""
            stream.write(textconv(data, name))
        elif args[:1] == ["diff"] and len(args) == 8:
            path, old_file, new_file = args[1], args[2], args[5]
            stream.write(external_diff(path, _read(old_file), _read(new_file)).encode())
        elif args[:1] == ["diff"] and len(args) == 2:
            stream.write(f"kmsnap diff {args[1]}: unmerged\n".encode())
        else:
            sys.stderr.write("usage: python -m kmsnap.gitdriver textconv FILE | diff ARGS...\n")
            return 1
    except (OSError, KmsnapError) as exc:
        sys.stderr.write(f"kmsnap git driver: {exc}\n")
        return 1
    stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
