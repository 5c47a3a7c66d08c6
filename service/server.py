"""Running the app: one process, or a parent that forks N workers sharing one listening socket.

The parent binds the socket before forking, so every worker accepts from the same queue and
the kernel spreads connections among them. Each worker runs its own event loop and pool.
SIGINT and SIGTERM reach the workers, which finish the requests in flight and exit.
"""

import contextlib
import errno
import logging
import os
import signal
import socket
import stat
import sys

from aiohttp import web

from service.app import create_app
from service.logs import AccessLogger
from service.settings import Settings

logger = logging.getLogger(__name__)

#: Seconds a stopping worker gives requests in flight before it closes them.
SHUTDOWN_TIMEOUT = 10.0


def bind(settings: Settings, unix_path: str | None) -> socket.socket:
    """The listening socket: TCP on settings.host:port, or a unix socket at ``unix_path``.

    Raises OSError when the address cannot be had: in use, not this machine's, no such
    directory, or a file that is not a socket already at ``unix_path``.
    """
    if unix_path:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(unix_path).st_mode):
                raise FileExistsError(errno.EEXIST, "a file that is not a socket is there")
            os.unlink(unix_path)  # A socket left behind by a server that stopped.
        family, target = socket.AF_UNIX, unix_path
    else:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        target = (settings.host, settings.port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(target)
        if family == socket.AF_UNIX:
            os.chmod(unix_path, 0o660)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    """Where a listening socket answers: its path, or an http:// URL."""
    if sock.family == socket.AF_UNIX:
        return sock.getsockname()
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def _run_worker(settings: Settings, sock: socket.socket) -> None:
    web.run_app(
        create_app(settings),
        sock=sock,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        access_log_class=AccessLogger,
    )


def serve(
    settings: Settings,
    unix_path: str | None = None,
    workers: int = 1,
    sock: socket.socket | None = None,
) -> None:
    """Serves until SIGINT or SIGTERM; returns once every worker has stopped.

    Listens on ``sock`` when given, bound by the caller with ``bind()``, so that a caller can
    learn that the address is taken before it does anything else; otherwise binds itself.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if sock is None:
        sock = bind(settings, unix_path)
    where = address(sock)
    logger.info("serving on %s with %d worker(s)", where, workers)
    print(f"printapi serving on {where} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    if workers == 1:
        _run_worker(settings, sock)
        return

    # Forward stop signals from the first fork on, so none can kill the parent alone.
    children: list[int] = []

    def forward(signum, _frame):
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            code = 0
            try:
                _run_worker(settings, sock)
            except BaseException:
                logger.exception("worker %d failed", os.getpid())
                code = 1
            os._exit(code)
        children.append(pid)

    failed = 0
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if os.waitstatus_to_exitcode(status) != 0:
                failed += 1
            break
    sock.close()
    if failed:
        raise WorkerError(f"{failed} of {workers} workers exited with an error")


class WorkerError(Exception):
    """A worker process ended with an error; its log says why."""
