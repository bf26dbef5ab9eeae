"""Test and packaging hygiene: no test sees the caller's environment, and pyproject.toml
declares every third-party package the code imports, each with the floor that CI's
"lowest" job installs."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest
from conftest import KEPT_NAMES, is_cleared
from packaging.requirements import Requirement
from packaging.version import Version

from kmsnap.cli import run

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-small"
CONSTRAINTS = ROOT / "tests" / "constraints-lowest.txt"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# --------------------------------------------------------------------- the environment

# What a developer's shell or a GitHub Actions job may well have set.
CALLER_ENV = {
    "KMSNAP_SNAPSHOT_DIR": "elsewhere",
    "KMSNAP_API": "http://127.0.0.1:9/core",
    "KMSNAP_FAIL_ON": "any",
    "KISSMETRICS_TOKEN": "the-callers-token",
    "GITHUB_ACTIONS": "true",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem",
}


def test_no_caller_variable_reaches_a_test() -> None:
    assert [name for name in os.environ if is_cleared(name)] == []


def test_a_github_report_never_reaches_the_callers_step_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # With GITHUB_STEP_SUMMARY inherited, this would append to the caller's job summary.
    assert run(["diff", "--format", "github", str(FIXTURE), str(FIXTURE)]) == 0
    capsys.readouterr()


def test_settings_and_requests_ignore_the_callers_shell(emulator: Any) -> None:
    import requests

    from kmsnap.config import DEFAULTS, Config

    assert Config().resolve("snapshot_dir", None) == DEFAULTS["snapshot_dir"]
    # An inherited HTTP_PROXY would send even this loopback request to the proxy (port 9).
    response = requests.get(emulator.base_url, timeout=10)
    assert response.status_code in (200, 401)
    response.close()


def test_the_fixture_clears_what_the_caller_set(tmp_path: Path) -> None:
    """The three tests above, run by a pytest whose environment has the caller's variables
    (and a job summary file): they pass, and the summary stays untouched."""
    summary = tmp_path / "summary.md"
    env = {**os.environ, **CALLER_ENV, "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("PYTEST_ADDOPTS", None)
    names = [
        "test_no_caller_variable_reaches_a_test",
        "test_a_github_report_never_reaches_the_callers_step_summary",
        "test_settings_and_requests_ignore_the_callers_shell",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(f"{__file__}::{name}" for name in names)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 passed" in proc.stdout
    assert not summary.exists()


def test_what_is_cleared() -> None:
    for name in ("KMSNAP_SNAPSHOT_DIR", "KMSNAP_ANYTHING_NEW", "KISSMETRICS_TOKEN",
                 "GITHUB_STEP_SUMMARY", "GITHUB_TOKEN", "HTTPS_PROXY", "https_proxy",
                 "no_proxy", "Http_Proxy", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                 "NETRC", "GIT_DIR"):
        assert is_cleared(name), name
    for name in ("HOME", "PATH", "GIT_CONFIG_GLOBAL", "PYTHONPATH", *KEPT_NAMES):
        assert not is_cleared(name), name


# ----------------------------------------------------------------------- packaging


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, Requirement]:
    project = _pyproject()["project"]
    reqs = [Requirement(r) for r in [*project["dependencies"],
                                     *project["optional-dependencies"]["test"]]]
    return {_norm(r.name): r for r in reqs}


def _imported_top_level_modules() -> set[str]:
    """Every module ``kmsnap/`` imports, by its top-level name (``importlib.import_module``
    of a literal included)."""
    found: set[str] = set()
    for path in (ROOT / "kmsnap").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value.split(".")[0])
    # tomllib is in the standard library from 3.11 (config.py falls back to tomli on 3.10).
    return found - set(sys.stdlib_module_names) - {"kmsnap", "__future__", "tomllib"}


# Import names whose distribution may not be installed here (tomli is only needed on 3.10).
KNOWN_DISTRIBUTIONS = {"yaml": "pyyaml", "tomli": "tomli"}


def test_every_third_party_import_is_declared() -> None:
    installed = packages_distributions()
    declared = _declared()
    modules = _imported_top_level_modules()
    assert {"requests", "urllib3", "typer", "rich", "yaml", "deepdiff", "uritemplate"} <= modules
    for module in sorted(modules):
        dists = {_norm(d) for d in installed.get(module, [])} or {
            KNOWN_DISTRIBUTIONS.get(module, module)
        }
        assert dists & set(declared), f"kmsnap imports {module}, pyproject.toml does not declare it"


def test_every_floor_is_what_the_lowest_job_installs() -> None:
    floors: dict[str, str] = {}
    for name, req in _declared().items():
        lower = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{name}: declare one lower bound (>=), not {req.specifier}"
        floors[name] = lower[0]
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (pin,) = list(req.specifier)
            assert pin.operator == "==", line
            pins[_norm(req.name)] = pin.version
    assert set(pins) == set(floors), "tests/constraints-lowest.txt pins other packages"
    for name, floor in floors.items():
        # Versions compare as versions: >=8 is pinned as 8.0.0.
        assert Version(pins[name]) == Version(floor), f"{name}: floor {floor}, pin {pins[name]}"
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "-c tests/constraints-lowest.txt" in workflow
