"""The bundled Kissmetrics Core API emulator: a catalog generator and a real HTTP server.

``generate_catalog`` builds a deterministic catalog, ``Catalog`` holds and mutates one,
and ``Emulator`` serves it on a loopback port (``kmsnap serve`` on the command line).
"""

from kmsnap.emulator.catalog import Catalog
from kmsnap.emulator.faults import Fault
from kmsnap.emulator.generate import AWKWARD_NAMES, generate_catalog
from kmsnap.emulator.server import Emulator, RequestRecord

__all__ = ["AWKWARD_NAMES", "Catalog", "Emulator", "Fault", "RequestRecord", "generate_catalog"]
