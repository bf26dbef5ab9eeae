"""kmsnap: a Kissmetrics catalog under version control.

The package is a library first; ``kmsnap.cli`` is a thin typer layer over it.
"""

__version__ = "0.1.0"
