"""The `kmsnap serve` command: run the bundled Kissmetrics Core API emulator until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from kmsnap.cli._common import info
from kmsnap.cli.app import app
from kmsnap.cli.environment import current
from kmsnap.errors import UsageError


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port to listen on; 0 picks a free one.")
    ] = 8765,
    token: Annotated[
        str, typer.Option(metavar="TOKEN", help="The bearer token the emulator accepts.")
    ] = "demo-token",
    catalog: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Serve this snapshot directory instead of a generated catalog."
        ),
    ] = None,
    size: Annotated[
        int, typer.Option(metavar="N", help="Entities in the generated catalog.")
    ] = 2000,
    seed: Annotated[
        int, typer.Option(metavar="S", help="Seed of the generated catalog and of faults.")
    ] = 0,
    latency_ms: Annotated[
        float, typer.Option(metavar="MS", help="Delay every answer by this many milliseconds.")
    ] = 0.0,
    fault_rate: Annotated[
        float,
        typer.Option(
            metavar="RATE", help="Share of requests answered 429, 500, 503 or cut off (0-1)."
        ),
    ] = 0.0,
    max_page_size: Annotated[
        int, typer.Option(metavar="N", help="Largest page the server returns.")
    ] = 100,
) -> None:
    """Run the bundled Kissmetrics Core API emulator, to try kmsnap without an account.

    Serves a generated demo catalog (or a snapshot directory with --catalog) on
    loopback, prints the base URL on its first line, and runs until Ctrl-C.
    Example, with a pull from a second shell:

    \b
        kmsnap serve --size 5000 --latency-ms 20
        KISSMETRICS_TOKEN=demo-token kmsnap pull --api http://127.0.0.1:8765/core
    """
    from kmsnap.emulator import Catalog, Emulator

    if not 0.0 <= fault_rate <= 1.0:
        raise UsageError(f"--fault-rate must be between 0 and 1, got {fault_rate}")
    if max_page_size < 1:
        raise UsageError(f"--max-page-size must be at least 1, got {max_page_size}")
    env = current()
    served: Catalog | None = None
    if catalog is not None:
        from kmsnap.snapshot.store import load_snapshot

        where = env.path(catalog)  # relative to the environment's cwd, named as given
        if not where.is_dir():
            raise UsageError(f"--catalog {catalog}: not a snapshot directory")
        served = Catalog.from_snapshot(load_snapshot(where, with_stats=True))
    emulator = Emulator(
        served,
        size=size,
        seed=seed,
        token=token,
        host=host,
        port=port,
        max_page_size=max_page_size,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
    )
    try:
        emulator.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stopped = threading.Event()

    def _on_term(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_term) if in_main else None
    try:
        env.write(emulator.base_url + "\n")  # flushed: a script waits for this line
        info(
            f"kmsnap: serving {emulator.catalog.size()} entities; "
            f"send 'Authorization: Bearer {token}'; Ctrl-C stops"
        )
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
