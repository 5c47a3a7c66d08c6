"""A PostgreSQL of the service's own under var/, for a machine that has no database server.

The server comes from pgserver, which ships PostgreSQL's binaries in a wheel. It listens on
a unix socket only, never on a network address. When run as root, pgserver runs the
server as a system user named ``pgserver``, since PostgreSQL refuses to run as root.
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def start(var_dir: Path, name: str = "pgdata"):
    """Starts (or joins) the embedded server whose data lives in ``var_dir/name``.

    Returns the pgserver handle; its ``get_uri()`` names the ``postgres`` database. The
    server stops when the last process that joined it exits, so two commands run side by
    side share one server.
    """
    import pgserver  # Imported here: only a machine without DATABASE_URL needs it.

    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(var_dir.resolve()))
    pgdata = var_dir.resolve() / name
    logger.info("starting the embedded PostgreSQL in %s", pgdata)
    return pgserver.get_server(pgdata, cleanup_mode="stop")


def stop(server) -> None:
    """Stops the embedded server now, unless another process still uses it."""
    server.cleanup()
