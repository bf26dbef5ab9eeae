"""The `kmsnap diff` command (to be built)."""
