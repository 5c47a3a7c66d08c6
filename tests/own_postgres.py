"""A PostgreSQL server of a test's own, which the test may stop and start again at will.

The shared server must never be stopped, so tests of outages run this one: PostgreSQL's
binaries from the pgserver wheel, on a temporary data directory, listening on 127.0.0.1 at
a free port and on no unix socket. As root the server runs as the ``pgserver`` user, as the
embedded database does, since PostgreSQL refuses to run as root.
"""

import asyncio
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

#: PostgreSQL's programs in the pgserver wheel, found without importing pgserver, whose
#: import reads the user's runtime directory and warns when XDG_RUNTIME_DIR is unset.
POSTGRES_BIN_PATH = (
    Path(importlib.util.find_spec("pgserver").submodule_search_locations[0]) / "pginstall/bin"
)

#: Seconds initdb, a start, or a fast shutdown may take on a busy machine.
STEP_TIMEOUT = 30.0
#: The system user a root process runs the server as (pgserver creates it).
SYSTEM_USER = "pgserver"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _system_user(name: str) -> pwd.struct_passwd:
    """The user ``name``, made first when missing (the embedded database makes it too)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


class OwnPostgres:
    """One server on its own data directory; ``start``, ``stop_fast`` and ``start`` again."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="printapi-pg-"))
        self.pgdata = self.directory / "pgdata"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen | None = None
        self._log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115
        self._user = SYSTEM_USER if os.geteuid() == 0 else None
        if self._user is not None:
            entry = _system_user(self._user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "--auth=trust",
            "--encoding=utf8",
            "--no-sync",
            "-U",
            "postgres",
            "-D",
            str(self.pgdata),
        )

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            user=self._user,
            timeout=STEP_TIMEOUT,
            check=True,
        )

    def start(self) -> None:
        """Starts the server on the same directory and port; returns once it takes connections."""
        self.process = subprocess.Popen(
            [
                str(POSTGRES_BIN_PATH / "postgres"),
                "-D",
                str(self.pgdata),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=40",
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=16MB",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            user=self._user,
            start_new_session=True,
        )

    async def wait_ready(self) -> None:
        """Waits, at most STEP_TIMEOUT seconds, until the server accepts a connection."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            try:
                connection = await asyncpg.connect(self.url, timeout=2)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {self.log_text()}") from None
                await asyncio.sleep(0.05)
            else:
                await connection.close()
                return

    def stop_fast(self) -> None:
        """PostgreSQL's fast shutdown, by the postmaster's pid: sessions are cut, then it exits."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGQUIT)  # Immediate shutdown.
            self.process.wait(timeout=STEP_TIMEOUT)

    def log_text(self) -> str:
        self._log.flush()
        return (self.directory / "postgres.log").read_text(errors="replace")

    def remove(self) -> None:
        """Stops the server if it runs, and deletes its directory."""
        with contextlib.suppress(ProcessLookupError):
            self.stop_fast()
        self._log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
