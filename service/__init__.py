"""printapi: the print history API that 3D-printer dashboards poll."""

from pathlib import Path

#: The checkout the package runs from: sql/ and migrations/ sit beside service/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
