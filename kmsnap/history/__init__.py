"""kmsnap log: the walk over commits, broken-file recovery, the cache, the views."""
