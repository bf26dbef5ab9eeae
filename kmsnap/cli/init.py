"""The `kmsnap init` command (to be built)."""
