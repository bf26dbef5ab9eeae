"""Imports every command module so that each registers itself on ``app``."""

# Each module owns one command (or two close ones) and registers with @app.command().
import kmsnap.cli.lint  # noqa: F401  (catalog governance: lint and stale)
import kmsnap.cli.probe  # noqa: F401  (kmsnap probe: the API's shapes, no values)
import kmsnap.cli.stale  # noqa: F401
from kmsnap.cli import compare, demo, diff, docs, export, init, log, pull, serve  # noqa: F401
from kmsnap.cli import find as _find  # noqa: F401  (find and show: one entity, a query)
from kmsnap.cli import show as _show  # noqa: F401
