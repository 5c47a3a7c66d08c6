"""A PostgreSQL of the service's own under var/, for a machine that has no database server.

The server comes from pgserver, which ships PostgreSQL's binaries in a wheel. It listens on
a unix socket only, never on a network address. When run as root, pgserver runs the
server as a system user named ``pgserver``, since PostgreSQL refuses to run as root.
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

#: Where pgserver lists the ids of the processes using the server (postgres_server.py).
_PGSERVER_USERS_FILE = ".handle_pids.json"


def start(var_dir: Path, name: str = "pgdata"):
    """Starts (or joins) the embedded server whose data lives in ``var_dir/name``.

    Returns the pgserver handle; its ``get_uri()`` names the ``postgres`` database. The
    server stops when the last process that joined it exits, so two commands run side by
    side share one server.
    """
    var_dir = var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    _give_runtime_dir(var_dir)
    import pgserver  # Imported here: only a machine without DATABASE_URL needs it.

    pgdata = var_dir / name
    _forget_exited_users(pgserver, pgdata)
    logger.info("starting the embedded PostgreSQL in %s", pgdata)
    return pgserver.get_server(pgdata, cleanup_mode="stop")


def _give_runtime_dir(var_dir: Path) -> None:
    """Points XDG_RUNTIME_DIR at var/run when unset, before pgserver is first imported.

    pgserver keeps its lock file in the user's runtime directory, which platformdirs looks
    up once, as pgserver is imported; without XDG_RUNTIME_DIR it warns and falls back to
    a directory under /tmp. platformdirs takes only a directory of the user's, mode 0700.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    run = var_dir / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(run)


def _forget_exited_users(pgserver, pgdata: Path) -> None:
    """Takes the processes that no longer exist off pgserver's list of the server's users.

    pgserver stops the server when the last process on that list exits, and each process
    takes itself off as it exits. One killed by SIGKILL never does, so without this the
    server would never be stopped again. pgserver has no call for this: its list is a
    DiskList in pgdata, changed only under its inter-process lock, and so it is here.
    """
    from pgserver.utils import DiskList, process_is_running

    with pgserver.PostgresServer._lock:
        users = DiskList(pgdata / _PGSERVER_USERS_FILE)
        pids = users.get()
        exited = [pid for pid in pids if not process_is_running(pid)]
        if exited:
            logger.info(
                "forgetting processes %s: they used the embedded PostgreSQL and exited", exited
            )
            users.put([pid for pid in pids if pid not in exited])


def stop(server) -> None:
    """Stops the embedded server now, unless another process still uses it."""
    server.cleanup()
