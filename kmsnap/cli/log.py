"""The `kmsnap log` command (to be built)."""
