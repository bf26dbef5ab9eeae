"""The `kmsnap demo` command (to be built)."""
