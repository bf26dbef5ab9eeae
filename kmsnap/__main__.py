"""Run the command line as ``python -m kmsnap``."""

from kmsnap.cli import main

main()
