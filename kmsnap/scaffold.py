"""The files ``kmsnap init`` writes into a user's repository: ``kmsnap.yaml`` and three GitHub
Actions workflows (scheduled snapshot, pull-request review, drift check) from ``templates/``.

The workflows install kmsnap with ``pip install`` of a requirement (``install``: by default
this version), or through kmsnap's own composite action (``action: OWNER/REPO@REF``, the
``action.yml`` at the repository root); either is written into ``kmsnap.yaml`` too, so a
re-run with ``--force`` keeps it. Both are user input that ends up in a workflow: checked by
``kmsnap.config.workflow``, quoted as JSON (which YAML reads as a double-quoted string), and
reaching the shell only through ``env:``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from kmsnap import __version__
from kmsnap.config import CONFIG_NAME, DEFAULTS, check_setting
from kmsnap.config.workflow import check_action, check_install
from kmsnap.errors import KmsnapError, UsageError
from kmsnap.snapshot.atomic import write_file_atomic

WORKFLOW_DIR = Path(".github") / "workflows"
SNAPSHOT_WORKFLOW = WORKFLOW_DIR / "kmsnap-snapshot.yml"
REVIEW_WORKFLOW = WORKFLOW_DIR / "kmsnap-review.yml"
DRIFT_WORKFLOW = WORKFLOW_DIR / "kmsnap-drift.yml"

# Actions pinned to full commit SHAs (a tag can be moved; a commit cannot), the tag alongside
# for people and for Dependabot, which updates both.
ACTIONS = {
    "CHECKOUT": "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
    "SETUP_PYTHON": "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0",
    "UPLOAD_ARTIFACT": "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2",
    "DOWNLOAD_ARTIFACT": (
        "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093 # v4.3.0"
    ),
}


def default_install() -> str:
    """What the workflows install when kmsnap.yaml says nothing: this version, from PyPI."""
    return f"kmsnap=={__version__}"


def yaml_string(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def _template(name: str) -> str:
    return (resources.files("kmsnap") / "templates" / name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:  # a placeholder nobody filled would ship a broken workflow
        raise AssertionError(f"unfilled placeholder in template: {text[text.index('@@') :][:40]}")
    return text


def render_files(
    *,
    direct: bool = False,
    fail_on: str = "any",
    snapshot_dir: str = "snapshots",
    install: str | None = None,
    action: str | None = None,
) -> dict[Path, str]:
    """The files ``init_project`` writes, relative path -> text; pure apart from reading
    the templates. ``install`` (a pip requirement) or ``action`` (``OWNER/REPO@REF``) says
    how the workflows get kmsnap; neither: ``default_install()``."""
    try:
        fail_on = check_setting("fail_on", fail_on)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None
    try:
        snapshot_dir = check_setting("snapshot_dir", snapshot_dir)
    except ValueError as exc:
        raise UsageError(f"--snapshot-dir: {exc}") from None
    setting, install, action = _install_setting(install, action)
    values = {
        "VERSION": __version__,
        "SNAPSHOT_DIR": snapshot_dir,
        "FAIL_ON": fail_on,
        "INSTALL": yaml_string(install or ""),
        "ACTION": action or "",
        "INSTALL_SETTING": setting,
        **ACTIONS,
    }
    setup = "workflows/_setup_action.tmpl" if action else "workflows/_setup.tmpl"
    values["SETUP_STEPS"] = _fill(_template(setup), values).rstrip("\n")
    values["DESCRIBE_CHANGE"] = _fill(_template("workflows/_describe_change.tmpl"), values).rstrip(
        "\n"
    )
    snapshot = "kmsnap-snapshot-direct.yml.tmpl" if direct else "kmsnap-snapshot-pr.yml.tmpl"
    return {
        Path(CONFIG_NAME): _fill(_template("kmsnap.yaml.tmpl"), values),
        SNAPSHOT_WORKFLOW: _fill(_template(f"workflows/{snapshot}"), values),
        REVIEW_WORKFLOW: _fill(_template("workflows/kmsnap-review.yml.tmpl"), values),
        DRIFT_WORKFLOW: _fill(_template("workflows/kmsnap-drift.yml.tmpl"), values),
    }


def _install_setting(
    install: str | None, action: str | None
) -> tuple[str, str | None, str | None]:
    """kmsnap.yaml's line for how the workflows get kmsnap, and the checked values."""
    if install is not None and action is not None:
        raise UsageError("--install and --action both say how to install kmsnap: give one")
    if action is not None:
        try:
            action = check_action(action)
        except ValueError as exc:
            raise UsageError(f"--action: {exc}") from None
        return f"action: {action}", None, action
    if install is not None:
        try:
            install = check_install(install)
        except ValueError as exc:
            raise UsageError(f"--install: {exc}") from None
        return f"install: {yaml_string(install)}", install, None
    return f"# install: {yaml_string(default_install())}", default_install(), None


def init_project(
    directory: Path,
    *,
    force: bool = False,
    direct: bool = False,
    fail_on: str = DEFAULTS["fail_on"],
    snapshot_dir: str = DEFAULTS["snapshot_dir"],
    keep_existing: bool = False,
    install: str | None = None,
    action: str | None = None,
) -> list[Path]:
    """Write ``kmsnap.yaml`` and the workflows into ``directory``; return the paths written.

    A file that already holds exactly the text to write is left alone. Another existing
    file makes it refuse, before writing anything, unless ``force`` (overwrite it) or
    ``keep_existing`` (leave it as it is: a second clone setting up only the git driver).
    """
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    files = {
        rel: text
        for rel, text in render_files(
            direct=direct,
            fail_on=fail_on,
            snapshot_dir=snapshot_dir,
            install=install,
            action=action,
        ).items()
        if not _holds(directory / rel, text)
    }
    if keep_existing and not force:
        files = {rel: text for rel, text in files.items() if not (directory / rel).exists()}
    if not force:
        existing = [str(rel) for rel in files if (directory / rel).exists()]
        if existing:
            what = ", ".join(existing)
            verb = "exists" if len(existing) == 1 else "exist"
            raise UsageError(
                f"{what} already {verb} in {directory.resolve()}: "
                "run `kmsnap init --force` to overwrite"
            )
    written: list[Path] = []
    for rel, text in files.items():
        target = directory / rel
        _write_atomic(target, text)
        written.append(target)
    return written


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _write_atomic(target: Path, text: str) -> None:
    # A half-written workflow would fail in CI far from here; replace the file whole.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(target, text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise KmsnapError(f"cannot write {target}: {exc.strerror}") from None
