"""Shared fixtures: the Core API emulator on a free loopback port, for every test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kmsnap.emulator import Catalog, Emulator

TOKEN = "demo-token"


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
