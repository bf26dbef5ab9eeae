"""``typed(value)``: a loaded value compared with its types kept apart (no tests here).

``==`` takes 1, 1.0 and True as equal, 0.0 and -0.0 as equal, and NaN as unequal to
itself; a reader that gives ``1`` where YAML gives ``True`` must not pass. Shared by the
attack suites of the fast reader and of the packed pull.
"""

from __future__ import annotations

import math
from typing import Any


def typed(value: Any) -> Any:
    """``value`` with every type kept apart: floats by their repr, dicts by sorted items."""
    if isinstance(value, dict):
        return ("dict", sorted((key, typed(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)
