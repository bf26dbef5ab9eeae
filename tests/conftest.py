"""Shared fixtures: a clean environment for every test, and the Core API emulator on a free
loopback port, for every test module."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kmsnap.emulator import Catalog, Emulator

TOKEN = "demo-token"

# Variables that change what kmsnap, requests or git do: settings and the token, GitHub
# Actions' own (GITHUB_STEP_SUMMARY would have tests write into the real job summary),
# proxies and CA bundles (a proxy would take even loopback requests elsewhere), netrc
# credentials, and the git variables a hook sets that point git at another repository.
# Compared in upper case: urllib reads proxy variables in any case (http_proxy, Http_Proxy).
CLEARED_PREFIXES = ("KMSNAP_", "KISSMETRICS_", "GITHUB_")
CLEARED_NAMES = frozenset(
    {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NETRC",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
    }
)
# The test suite's own switches, which the run sets on purpose (.ci/run, the README).
KEPT_NAMES = frozenset({"KMSNAP_REQUIRE_LINTERS", "KMSNAP_UPDATE_GOLDEN", "KMSNAP_UPDATE_DOCS"})


def is_cleared(name: str) -> bool:
    """Whether the ``clean_environment`` fixture removes variable ``name`` for a test."""
    if name in KEPT_NAMES:
        return False
    upper = name.upper()
    return upper in CLEARED_NAMES or upper.startswith(CLEARED_PREFIXES)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without the caller's kmsnap, GitHub, proxy and git variables, so
    a shell's ``KMSNAP_SNAPSHOT_DIR`` or a CI job's ``GITHUB_STEP_SUMMARY`` changes nothing;
    a test that needs one sets it with ``monkeypatch.setenv``."""
    for name in list(os.environ):
        if is_cleared(name):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One emulator for the whole run, serving ``generate_catalog(size=200, seed=0)``.

    Shared: treat it as read-only (no catalog changes, tokens or faults); use
    ``make_emulator`` for anything that changes state. Its token is ``demo-token``.
    """
    with Emulator(token=TOKEN) as emu:
        yield emu


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """A factory: ``make_emulator(catalog=None, **kwargs)`` gives a started ``Emulator``.

    Keyword arguments are those of ``Emulator`` (``size``, ``seed``, ``token``,
    ``max_page_size``, ``latency_ms``, ``fault_rate``, ...). Every emulator it made is
    stopped at teardown.
    """
    made: list[Emulator] = []

    def make(catalog: Catalog | None = None, **kwargs: Any) -> Emulator:
        emu = Emulator(catalog, **kwargs)
        made.append(emu)
        return emu.start()

    yield make
    for emu in made:
        emu.stop()
