"""``kmsnap docs``: the catalog as one self-contained HTML data dictionary (``data`` builds what
the page shows, ``page`` writes the file around it, ``assets`` holds its CSS and script)."""

from kmsnap.docspage.data import DEFAULT_STALE_DAYS, build_page_data
from kmsnap.docspage.page import render_page

__all__ = ["DEFAULT_STALE_DAYS", "build_page_data", "render_page"]
