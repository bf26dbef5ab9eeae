"""Where a snapshot comes from: one ``Source`` per API (``core``, ``v3``), chosen by name or URL.

Every source pulls into the same ``kmsnap.model.Snapshot``; the store, diff, render, history
and CI parts do not know which one it came from.
"""

from __future__ import annotations

from kmsnap.sources.base import PullResult, Source, get_source, source_for_url, source_names

__all__ = ["PullResult", "Source", "get_source", "source_for_url", "source_names"]
