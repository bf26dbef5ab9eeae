"""Imports every command module so that each registers itself on ``app``."""

# Each module owns one command (or two close ones) and registers with @app.command().
from kmsnap.cli import demo, diff, docs, export, init, log, pull, serve  # noqa: F401
