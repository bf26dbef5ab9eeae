"""The `kmsnap serve` command (to be built)."""
