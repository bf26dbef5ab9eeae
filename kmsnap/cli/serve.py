"""The `kmsnap serve` command: run the bundled Kissmetrics API emulator (Core, or the REST API
v3 with --source v3) until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from kmsnap.cli._common import info
from kmsnap.cli.environment import current
from kmsnap.cli.typerapp import app
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
    source: Annotated[
        str, typer.Option("--source", metavar="core|v3",
                          help="The API to speak: core, or v3 (the REST API v3, Basic auth "
                               "demo@example.com:demo-password or the API key demo-api-key)")
    ] = "core",
    rate_per_minute: Annotated[
        int, typer.Option(metavar="N", help="v3: answer over N requests a minute with the "
                                            "--over-limit refusal; 0: no limit")
    ] = 15,
    over_limit: Annotated[
        str, typer.Option(metavar="FORM", help="v3: the refusal over the limit: "
                                               "429-retry-after, 429, 503 or 503-retry-after")
    ] = "429-retry-after",
    envelope: Annotated[
        str, typer.Option(metavar="KEYS", help="v3: where records go: data, resource, events "
                                               "or published")
    ] = "data",
    max_limit: Annotated[
        int, typer.Option(metavar="N", help="v3: serve at most N records a page whatever "
                                            "limit asks (a silent cap); 0: no cap")
    ] = 0,
) -> None:
    """Run the bundled Kissmetrics API emulator, to try kmsnap without an account.

    Serves a generated demo catalog (or a snapshot directory with --catalog) on
    loopback, prints the base URL on its first line, and runs until Ctrl-C. With
    --source v3 it speaks the REST API v3 (integer ids, Basic auth, 15 requests a
    minute). Example, with a pull from a second shell:

    \b
        kmsnap serve --size 5000 --latency-ms 20
        KISSMETRICS_TOKEN=demo-token kmsnap pull --api http://127.0.0.1:8765/core
        kmsnap serve --source v3     # then, in another shell:
        KISSMETRICS_API_KEY=demo-api-key kmsnap pull --api http://127.0.0.1:8765/v3
    """
    from kmsnap.emulator import Catalog, Emulator

    if not 0.0 <= fault_rate <= 1.0:
        raise UsageError(f"--fault-rate must be between 0 and 1, got {fault_rate}")
    if max_page_size < 1:
        raise UsageError(f"--max-page-size must be at least 1, got {max_page_size}")
    if source not in ("core", "v3"):
        raise UsageError(f"--source must be core or v3, got {source!r}")
    if rate_per_minute < 0 or max_limit < 0:
        raise UsageError("--rate-per-minute and --max-limit must be 0 or more")
    env = current()
    served: Catalog | None = None
    if catalog is not None:
        from kmsnap.snapshot.store import load_snapshot

        where = env.path(catalog)  # relative to the environment's cwd, named as given
        if not where.is_dir():
            raise UsageError(f"--catalog {catalog}: not a snapshot directory")
        served = Catalog.from_snapshot(load_snapshot(where, with_stats=True))
    emulator: Emulator
    if source == "v3":
        from kmsnap.emulator.v3 import API_KEY, PASSWORD, USERNAME, EmulatorV3

        try:
            emulator = EmulatorV3(
                served, size=size, seed=seed, host=host, port=port, latency_ms=latency_ms,
                fault_rate=fault_rate, rate_per_minute=rate_per_minute or None,
                over_limit=over_limit, envelope=envelope, max_limit=max_limit or None,
            )
        except ValueError as exc:
            raise UsageError(f"kmsnap serve --source v3: {exc}") from None
        auth = f"HTTP Basic {USERNAME}:{PASSWORD}, or the API key {API_KEY}"
    else:
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
        auth = f"'Authorization: Bearer {token}'"
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
            f"send {auth}; Ctrl-C stops"
        )
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
