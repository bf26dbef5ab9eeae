"""``python -m kmsnap.gitdriver``: kept forever, because users' ``.git/config`` calls it.

The driver lives in :mod:`kmsnap.git.driver`; this module only starts it. Nothing else
should import this module.
"""

from __future__ import annotations

import sys

from kmsnap.git.driver import main

if __name__ == "__main__":
    sys.exit(main())
