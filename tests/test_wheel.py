"""The wheel people install: built from this tree with the installed setuptools (no network),
installed into a fresh venv, and `kmsnap demo` and `kmsnap init` run from it, templates too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from kmsnap import __version__

REPO = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_", "GIT_", "PYTHON", "PIP_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


@pytest.mark.slow
def test_the_wheel_installs_and_runs_demo_and_init(tmp_path: Path) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("setuptools")
    except PackageNotFoundError:  # pragma: no cover - pyproject's [test] extra installs it
        pytest.fail("building the wheel needs setuptools: pip install -e '.[test]'")
    # Without the 'wheel' package, setuptools builds wheels from 70.1 on.
    assert tuple(int(p) for p in found.split(".")[:2]) >= (70, 1), found
    # A copy of the files git knows (tracked, or new and not ignored): no build/ or egg-info
    # left over from an editable install finds its way into the wheel.
    source = tmp_path / "src"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=False, env=clean_env(),
    )
    if listed.returncode == 0:
        for rel in filter(None, listed.stdout.decode("utf-8").split("\0")):
            if (REPO / rel).is_file():
                (source / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, source / rel)
    else:  # not a git checkout (an unpacked sdist or archive)
        shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", ".venv", "node_modules", "__pycache__", ".*_cache"
        ))
    dist = tmp_path / "dist"
    # --no-build-isolation: the installed setuptools, so nothing is downloaded.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(dist), str(source)],
        capture_output=True, text=True, timeout=120, check=False,
        env=clean_env(), cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("kmsnap-*.whl")
    assert wheel.name == f"kmsnap-{__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (REPO / "kmsnap" / "templates").rglob("*.tmpl"):
        assert template.relative_to(REPO).as_posix() in names
    assert "kmsnap/py.typed" in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)

    # A fresh venv; the dependencies come from this interpreter's site-packages.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False, symlinks=os.name != "nt")
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", str(wheel)] if _pip_has_python_option() else
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--prefix",
         str(env_dir), str(wheel)],
        capture_output=True, text=True, timeout=120, check=False, env=clean_env(), cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    kmsnap = env_dir / "bin" / "kmsnap"
    assert kmsnap.is_file()
    where = subprocess.run(
        [str(python), "-c", "import kmsnap; print(kmsnap.__file__)"],
        capture_output=True, text=True, check=True, env=clean_env(), cwd=tmp_path,
    ).stdout
    assert Path(where).resolve().is_relative_to(env_dir.resolve()), where  # not this checkout

    env = clean_env(PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    demo = subprocess.run(
        [str(kmsnap), "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (tmp_path / "demo" / "snapshots").is_dir()
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    init = subprocess.run(
        [str(kmsnap), "init", "--dir", str(repo)],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd=tmp_path,
    )
    assert init.returncode == 0, init.stderr
    review = (repo / ".github" / "workflows" / "kmsnap-review.yml").read_text()
    assert f"KMSNAP_INSTALL: \"kmsnap=={__version__}\"" in review
    assert "install:" in (repo / "kmsnap.yaml").read_text()


def _pip_has_python_option() -> bool:
    import pip

    return tuple(int(p) for p in pip.__version__.split(".")[:2]) >= (22, 3)


def test_release_publishes_a_tag_through_trusted_publishing() -> None:
    import re

    import yaml

    text = (REPO / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    on = data.get("on", data.get(True))
    assert on == {"push": {"tags": ["v*"]}}
    assert data["permissions"] == {}
    jobs = data["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    # Only the job that uploads to PyPI may ask for an OIDC token; no password anywhere.
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert jobs["pypi"]["environment"]["name"] == "pypi"
    assert "password" not in text and "secrets." not in text
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
    build = "\n".join(s.get("run", "") for s in jobs["build"]["steps"])
    assert "python -m build" in build and "twine check --strict dist/*" in build
    for job in jobs.values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line
    assert "pypa/gh-action-pypi-publish@" in text
    # The changelog has a section the release notes are cut from.
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
