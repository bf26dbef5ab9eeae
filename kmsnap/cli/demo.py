"""The ``kmsnap demo`` command: run the library's demo scenario and show each step to a person."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kmsnap.cli.environment import current
from kmsnap.cli.typerapp import app

if TYPE_CHECKING:
    from kmsnap.demo.scenario import DemoStep

MARKDOWN_PREVIEW_LINES = 40  # the rest of the comment is in the file the demo writes

_BOLD, _DIM, _RED, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[1;31m", "\x1b[0m"


class _Printer:
    """Headed sections on stdout; colour only on a terminal (and never with NO_COLOR).

    The environment is taken once, in the command's thread (the demo may call back from
    another)."""

    def __init__(self) -> None:
        self.env = current()
        self.color = self.env.stdout_color
        self.number = 0

    def paint(self, style: str, text: str) -> str:
        return f"{style}{text}{_RESET}" if self.color else text

    def write(self, text: str = "") -> None:
        self.env.write(text + "\n")

    def heading(self, title: str) -> None:
        self.number += 1
        self.write()
        self.write(self.paint(_BOLD, f"== {self.number}. {title} =="))

    def step(self, step: DemoStep) -> None:
        from kmsnap.render.changes import render_text

        self.heading(step.title)
        for line in step.lines:
            self.write(self.paint(_DIM, line) if line.startswith("$ ") else line)
        if step.changes is not None:
            self.write()
            self.write(render_text(step.changes, color=self.color).rstrip("\n"))
        if step.markdown is not None:
            lines = step.markdown.rstrip("\n").split("\n")
            self.write()
            for line in lines[:MARKDOWN_PREVIEW_LINES]:
                self.write("  │ " + line)
            if len(lines) > MARKDOWN_PREVIEW_LINES:
                self.write(f"  │ … ({len(lines) - MARKDOWN_PREVIEW_LINES} more lines)")
        for line in step.after:
            self.write()
            self.write(self.paint(_RED, line) if line.startswith("exit 2") else line)


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", metavar="DIR", show_default=False,
                     help="Create the demo repository here (new or empty) "
                          "[default: a new temporary directory]"),
    ] = None,
    size: Annotated[
        int, typer.Option("--size", metavar="N", help="Entities in the generated catalog")
    ] = 500,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the generated catalog")
    ] = 0,
    source: Annotated[
        str, typer.Option("--source", metavar="core|v3",
                          help="The API the emulator speaks: core, or v3 (the REST API v3: "
                               "no metrics, no property types, so no such edits)")
    ] = "core",
) -> None:
    """Run the whole job on the bundled emulator: no account, no network, a few seconds.

    Starts the Kissmetrics API emulator, pulls its catalog into snapshots/ in a new git
    repository and commits; changes the catalog as a week of product work would (events
    added, renamed and re-created, a property hidden and retyped, a metric's unit changed,
    usage counters moving); pulls and commits again; then shows the diff, the pull-request
    comment and what kmsnap check says about drift. The repository stays for you to explore.

    Example:

    \b
        kmsnap demo --dir /tmp/kmsnap-demo
        cd /tmp/kmsnap-demo && git log --stat && kmsnap diff HEAD~1:snapshots snapshots
    """
    from kmsnap.demo.scenario import DemoOptions, run_demo

    out = _Printer()
    where = out.env.path(directory) if directory is not None else None
    out.write(out.paint(_BOLD, "kmsnap demo: a Kissmetrics catalog under version control, "
                               "on the bundled emulator (no account, no network)"))
    result = run_demo(DemoOptions(directory=where, size=size, seed=seed, source=source),
                      out.step)

    out.heading("Your turn")
    out.write(f"The demo repository is in {result.repo} (took {result.elapsed:.1f} s):")
    out.write(f"    cd {_shell_quote(str(result.repo))} && git log --stat")
    out.write("    kmsnap diff HEAD~1:snapshots snapshots")
    if result.markdown_path is not None:
        out.write(f"    less {result.markdown_path.name}       # the pull-request comment")
    out.write("")
    out.write("Now with your own catalog, in your repository:")
    if source == "v3":
        out.write("    export KISSMETRICS_USERNAME=... KISSMETRICS_PASSWORD=...  # or "
                  "KISSMETRICS_API_KEY")
        out.write("    echo 'source: v3' >> kmsnap.yaml   # after kmsnap init")
    else:
        out.write("    export KISSMETRICS_TOKEN=...   # Account settings > Manage API Tokens")
    out.write("    kmsnap init                    # kmsnap.yaml and the CI workflows")
    out.write("    kmsnap pull                    # writes snapshots/")
    out.write("    git add snapshots kmsnap.yaml .github && git commit -m \"Catalog snapshot\"")


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
