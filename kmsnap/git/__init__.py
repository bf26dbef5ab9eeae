"""Git: one runner, the blob reader and REV:PATH source, and the diff driver git calls."""
