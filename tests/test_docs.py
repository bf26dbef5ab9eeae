"""The docs document every command and option, their examples are what the code prints now,
their links lead somewhere, and the README's set-up commands are the ones CI relies on.

README.md tells the story; the reference is under docs/ (docs/commands.md: every command
with its options and outputs). ``KMSNAP_UPDATE_DOCS=1 pytest tests/test_docs.py`` (or
``python scripts/gen_docs.py``) rewrites the generated blocks instead of failing on them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main

from kmsnap.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMMANDS = ROOT / "docs" / "commands.md"
SETUP_COMMANDS = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e . && kmsnap demo',
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && pytest',
)


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_docs"] = module
    spec.loader.exec_module(module)
    return module


gen_docs = _load_generator()


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _doc_files() -> list[Path]:
    return gen_docs.doc_files()  # type: ignore[no-any-return]


def _outside_fences(text: str) -> list[str]:
    """The lines of ``text`` that are not inside a fenced code block ("" in their place)."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def _section(text: str, heading: re.Pattern[str]) -> str | None:
    """The text under the first heading matching ``heading``, up to the next heading of the
    same or a higher level (headings inside code blocks do not count)."""
    lines = text.split("\n")
    plain = _outside_fences(text)
    for n, line in enumerate(plain):
        found = re.match(r"(#+) ", line)
        if found and heading.search(line):
            level = len(found.group(1))
            end = next((m for m in range(n + 1, len(plain))
                        if (h := re.match(r"(#+) ", plain[m])) and len(h.group(1)) <= level),
                       len(lines))
            return "\n".join(lines[n + 1:end])
    return None


def _slug(title: str) -> str:
    """GitHub's anchor for a heading."""
    title = re.sub(r"<[^>]+>", "", title).strip().lower()
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    for line in _outside_fences(text):
        found = re.match(r"#+ (.*)", line)
        if found:
            slug = _slug(found.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            if count:
                seen[f"{slug}-{count}"] = 1
    return set(seen)


def _visible_commands() -> dict[str, Any]:
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    return {name: cmd for name, cmd in commands.items() if not cmd.hidden}


def _options(command: Any) -> list[str]:
    out: list[str] = []
    for param in command.params:
        if param.param_type_name != "option" or getattr(param, "hidden", False):
            continue
        out.extend(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    return [o for o in out if o != "--help"]


@pytest.mark.parametrize("name", sorted(_visible_commands()))
def test_every_command_and_option_is_in_the_command_reference(name: str) -> None:
    section = _section(COMMANDS.read_text(encoding="utf-8"),
                       re.compile(rf"^#+ `kmsnap {re.escape(name)}`"))
    assert section is not None, f"docs/commands.md has no '## `kmsnap {name}`' section"
    missing = [o for o in _options(_visible_commands()[name]) if f"`{o}" not in section
               and f", {o}" not in section]
    assert not missing, f"kmsnap {name}: options missing from docs/commands.md: {missing}"


def test_global_options_are_in_the_command_reference() -> None:
    section = _section(COMMANDS.read_text(encoding="utf-8"), re.compile(r"^#+ Global options"))
    assert section is not None, "docs/commands.md has no 'Global options' section"
    group = typer.main.get_command(app)
    missing = [o for o in _options(group) if f"`{o}" not in section]
    assert not missing, f"global options missing from docs/commands.md: {missing}"


def test_setup_commands_are_verbatim() -> None:
    text = _readme()
    for command in SETUP_COMMANDS:
        assert f"```sh\n{command}\n```" in text, f"README.md lost the set-up command: {command}"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = SETUP_COMMANDS[1].split("&& ")[-1]  # "pytest"
    assert f"\n{test_command}\n" in ci, ".ci/run no longer runs the README's test command"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return gen_docs.generate()  # type: ignore[no-any-return]


def test_every_generated_block_is_in_exactly_one_file(generated: dict[str, str]) -> None:
    where: dict[str, list[str]] = {}
    for path in _doc_files():
        for name in gen_docs.blocks_in(path.read_text(encoding="utf-8")):
            where.setdefault(name, []).append(path.relative_to(ROOT).as_posix())
    assert sorted(set(generated) - set(where)) == [], "blocks no file shows"
    assert sorted(set(where) - set(generated)) == [], "blocks nothing generates"
    twice = {name: files for name, files in where.items() if len(files) > 1}
    assert not twice, f"blocks in more than one place: {twice}"


def test_generated_blocks_match_the_code(generated: dict[str, str]) -> None:
    stale = []
    for path in _doc_files():
        text = path.read_text(encoding="utf-8")
        if os.environ.get("KMSNAP_UPDATE_DOCS") == "1":
            new = gen_docs.update(text, generated)
            if new != text:
                path.write_text(new, encoding="utf-8")
            continue
        for name, body in gen_docs.blocks_in(text).items():
            if body != generated.get(name):
                print(f"--- {path.name} block {name!r} should be:\n{generated.get(name)}")
                stale.append(f"{path.relative_to(ROOT).as_posix()}:{name}")
    assert not stale, (
        f"generated blocks out of date: {', '.join(stale)}; run python scripts/gen_docs.py "
        "(or KMSNAP_UPDATE_DOCS=1 pytest tests/test_docs.py) and review the change"
    )


def test_config_examples_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kmsnap.config import load_config, resolve_settings

    text = "\n".join(path.read_text(encoding="utf-8") for path in _doc_files())
    examples = {
        "kmsnap.yaml": re.search(r"```yaml\n# kmsnap.yaml\n(.*?)```", text, re.S),
        "pyproject.toml": re.search(r"```toml\n# pyproject.toml\n(.*?)```", text, re.S),
    }
    for name, found in examples.items():
        assert found, f"neither README.md nor docs/*.md has a {name} example"
        directory = tmp_path / name.replace(".", "-")
        directory.mkdir()
        (directory / name).write_text(found.group(1), encoding="utf-8")
        for env in ("KMSNAP_SNAPSHOT_DIR", "KMSNAP_FAIL_ON"):
            monkeypatch.delenv(env, raising=False)
        config = load_config(cwd=directory)
        assert config.path is not None and config.path.name == name
        resolve_settings(config)


def test_links_lead_to_files_and_headings_that_exist() -> None:
    broken = []
    for path in _doc_files():
        text = path.read_text(encoding="utf-8")
        plain = "\n".join(_outside_fences(text))
        plain = re.sub(r"`[^`\n]*`", "", plain)  # code spans hold no links
        for target in re.findall(r"\]\(([^)\s]+)\)", plain):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT).as_posix()} -> {target}"
            if not linked.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(
                    linked.read_text(encoding="utf-8")):
                broken.append(f"{where} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_doc_page_is_linked_from_the_readme() -> None:
    text = _readme()
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"docs/{p.name}" not in text]
    assert not missing, f"README.md does not link to: {missing}"
