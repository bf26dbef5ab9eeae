"""The README documents every command and option, its examples are what the code prints now,
and its set-up commands are the ones CI relies on.

``KMSNAP_UPDATE_DOCS=1 pytest tests/test_docs.py`` (or ``python scripts/gen_docs.py``)
rewrites the generated blocks instead of failing on them.
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


def _visible_commands() -> dict[str, Any]:
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    return {name: cmd for name, cmd in commands.items() if not cmd.hidden}


def _options(command: Any) -> list[str]:
    out = []
    for param in command.params:
        if param.param_type_name != "option" or getattr(param, "hidden", False):
            continue
        out.extend(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    return [o for o in out if o != "--help"]


@pytest.mark.parametrize("name", sorted(_visible_commands()))
def test_every_command_and_option_is_in_the_readme(name: str) -> None:
    text = _readme()
    assert re.search(rf"^### `kmsnap {re.escape(name)}`", text, re.M), (
        f"README.md has no '### `kmsnap {name}`' section"
    )
    section = text.split(f"### `kmsnap {name}`", 1)[1].split("\n### ", 1)[0]
    missing = [o for o in _options(_visible_commands()[name]) if f"`{o}" not in section
               and f", {o}" not in section]
    assert not missing, f"kmsnap {name}: options missing from its README section: {missing}"


def test_global_options_are_in_the_readme() -> None:
    text = _readme()
    group = typer.main.get_command(app)
    missing = [o for o in _options(group) if o not in text]
    assert not missing, f"global options missing from README.md: {missing}"


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


def test_every_generated_block_is_in_the_readme(generated: dict[str, str]) -> None:
    present = gen_docs.blocks_in(_readme())
    assert sorted(set(generated) - set(present)) == [], "blocks the README does not show"
    assert sorted(set(present) - set(generated)) == [], "README blocks nothing generates"


def test_generated_blocks_match_the_code(generated: dict[str, str]) -> None:
    text = _readme()
    if os.environ.get("KMSNAP_UPDATE_DOCS") == "1":
        new = gen_docs.update(text, generated)
        if new != text:
            README.write_text(new, encoding="utf-8")
        return
    present = gen_docs.blocks_in(text)
    stale = [name for name, body in generated.items() if present.get(name) != body]
    for name in stale:
        print(f"--- README block {name!r} should be:\n{generated[name]}")
    assert not stale, (
        f"README.md blocks out of date: {', '.join(stale)}; run python scripts/gen_docs.py "
        "(or KMSNAP_UPDATE_DOCS=1 pytest tests/test_docs.py) and review the change"
    )


def test_config_examples_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kmsnap.config import load_config, resolve_settings

    text = _readme()
    examples = {
        "kmsnap.yaml": re.search(r"```yaml\n# kmsnap.yaml\n(.*?)```", text, re.S),
        "pyproject.toml": re.search(r"```toml\n# pyproject.toml\n(.*?)```", text, re.S),
    }
    for name, found in examples.items():
        assert found, f"README.md has no {name} example"
        directory = tmp_path / name.replace(".", "-")
        directory.mkdir()
        (directory / name).write_text(found.group(1), encoding="utf-8")
        for env in ("KMSNAP_SNAPSHOT_DIR", "KMSNAP_FAIL_ON"):
            monkeypatch.delenv(env, raising=False)
        config = load_config(cwd=directory)
        assert config.path is not None and config.path.name == name
        resolve_settings(config)


def test_links_to_docs_exist() -> None:
    for target in re.findall(r"\]\(((?:docs|benchmarks|snapshots)/[^)#]*)\)", _readme()):
        assert (ROOT / target).exists(), f"README.md links to a missing {target}"
