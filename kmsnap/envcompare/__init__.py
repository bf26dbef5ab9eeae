"""Staging against production: two products of one catalog compared by entity *name*, since
ids differ between products (``kmsnap diff`` matches by id and cannot do this).

Pure: a ``Snapshot`` in, ``Pairing`` results and their text, markdown and JSON out. Products
are paired by Kissmetrics' ``environment`` field (``staging``/``development`` on the left,
``production`` on the right; by the words in their names when no product says), or named.
Entities match within each kind by normalised name (case, spacing, ``_`` and ``-`` do not
count), through kmsnap.yaml's ``compare.names`` for deliberate differences.
"""

from kmsnap.envcompare.matching import compare_environments, compare_products, fails
from kmsnap.envcompare.model import (
    COMPARED_FIELDS,
    FORMATS,
    LEFT_ENVIRONMENTS,
    REQUIRE,
    RIGHT_ENVIRONMENTS,
    Difference,
    Only,
    Pairing,
    Side,
    check_compare_config,
    normalize_name,
)
from kmsnap.envcompare.pairing import find_pairs
from kmsnap.envcompare.render import render_pairings

__all__ = [
    "COMPARED_FIELDS",
    "FORMATS",
    "LEFT_ENVIRONMENTS",
    "REQUIRE",
    "RIGHT_ENVIRONMENTS",
    "Difference",
    "Only",
    "Pairing",
    "Side",
    "check_compare_config",
    "compare_environments",
    "compare_products",
    "fails",
    "find_pairs",
    "normalize_name",
    "render_pairings",
]
