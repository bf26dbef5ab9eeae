"""The `kmsnap pull` command (to be built)."""
