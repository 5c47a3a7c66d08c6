"""Running the app: one process, or a parent that forks N workers sharing one listening socket.

The parent binds the socket before forking, so every worker accepts from the same queue and
the kernel spreads connections among them. Each worker runs its own event loop and pool.
The parent serves nothing: it starts a new worker when one dies, and passes SIGINT and
SIGTERM on to the workers, which stop accepting, finish the requests in flight and exit. A
worker whose parent dies stops the same way, so none serves on unsupervised.
Forking keeps the start cheap and the design small; the price is that the workers run the
code the parent loaded, so a new release needs a new parent.

A stop asked for by a signal is not a failure. Ctrl-C reaches the parent and every worker at
once, and the parent passes it on again: a process that is already stopping ignores any
further SIGINT or SIGTERM and finishes its drain, which the parent bounds.
"""

import asyncio
import contextlib
import ctypes
import errno
import logging
import multiprocessing
import os
import select
import shutil
import signal
import socket
import stat
import sys
import time
from pathlib import Path

from aiohttp import web

from service.app import create_app
from service.logs import AccessLogger
from service.settings import Settings

logger = logging.getLogger(__name__)

#: Seconds a stopping worker keeps serving the connections it has accepted, once it no longer
#: accepts new ones, before it closes those that have not sent a request.
ACCEPTED_GRACE = 0.5
#: Seconds past the shutdown timeout the parent waits for a stopping worker before it kills it.
STOP_MARGIN = 2.0
#: A worker that dies sooner than this after it was forked counts as failing at start.
STEADY_AFTER = 5.0
#: Failures at start in a row after which the parent gives up and exits with an error.
START_FAILURES = 5
#: Seconds between a failure at start and the next try.
RESPAWN_PAUSE = 1.0


def bind(settings: Settings, unix_path: str | None) -> socket.socket:
    """The listening socket: TCP on settings.host:port, or a unix socket at ``unix_path``.

    Raises OSError when the address cannot be had: in use, not this machine's, no such
    directory, or a file that is not a socket already at ``unix_path``.
    """
    if unix_path:
        _remove_stale_socket_file(unix_path)
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


def _remove_stale_socket_file(path: str) -> None:
    """Removes a socket file that nothing listens on any more, as a killed server leaves one.

    Raises OSError when a server accepts connections there: unlinking its file would leave it
    running where no client can reach it. Raises one too for a file that is not a socket.
    XXX: two serves started at the same moment on one stale file can both find it stale,
    and the second's unlink can remove the first's new socket; a lock file would close that.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(errno.EEXIST, "a file that is not a socket is there")

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # A listener whose backlog is full answers EAGAIN at once.
        answer = probe.connect_ex(path)

    if answer in (0, errno.EAGAIN):
        raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
    if answer == errno.ECONNREFUSED:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    elif answer != errno.ENOENT:
        raise OSError(answer, os.strerror(answer))


@contextlib.contextmanager
def closing_bound(sock: socket.socket):
    """Closes a socket that ``bind()`` made on leaving, and removes its unix socket file.

    The file is removed only while it is still the one bound here, so that a stop never takes
    the path from a server that listens there now. A socket a service manager passed is not
    for this: its file belongs to the manager.
    """
    path = sock.getsockname() if sock.family == socket.AF_UNIX else None
    made = os.stat(path) if path else None
    try:
        yield sock
    finally:
        sock.close()
        if made is not None:
            with contextlib.suppress(FileNotFoundError):
                there = os.stat(path)
                if (there.st_dev, there.st_ino) == (made.st_dev, made.st_ino):
                    os.unlink(path)


#: The first file descriptor a service manager passes (sd_listen_fds(3)).
_FIRST_PASSED_FD = 3


def inherited_socket(environ) -> socket.socket | None:
    """The listening socket a service manager passed, as systemd's socket activation does.

    The manager sets LISTEN_FDS and LISTEN_PID; the variables are removed once read, so that
    a process started from this one does not take the socket for its own. Holding the socket
    outside the service is what lets a restart refuse no connection. Raises OSError when
    what was passed is not one listening stream socket.
    """
    if environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = environ.pop("LISTEN_FDS", "")
    environ.pop("LISTEN_PID", None)
    environ.pop("LISTEN_FDNAMES", None)
    if count != "1":
        raise OSError(errno.EINVAL, f"expected one passed socket, not {count or 'none'}")
    sock = socket.socket(fileno=_FIRST_PASSED_FD)
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    ):
        sock.detach()
        raise OSError(errno.EINVAL, "the passed socket is not a listening stream socket")
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    """Where a listening socket answers: its path, or an http:// URL."""
    if sock.family == socket.AF_UNIX:
        return sock.getsockname()
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


#: The signals that ask serve to stop: SIGTERM from a service manager, SIGINT from Ctrl-C.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
#: Seconds an idle kept-open connection stays open: longer than nginx keeps its own open
#: (deploy/nginx.conf, 60 s), so that nginx is the side that closes one.
KEEPALIVE_TIMEOUT = 75.0


def _run_worker(
    settings: Settings,
    sock: socket.socket,
    parent_pid: int | None = None,
    seat: "LoadSeat | None" = None,
) -> None:
    """Serves on ``sock`` until SIGINT or SIGTERM, then finishes the requests in flight.

    ``parent_pid`` names the supervising parent; None means this process serves alone, and
    then it logs the stop itself. ``seat`` is this worker's place among the loads the
    workers share (FairAcceptor).
    """
    # Held back until the loop's handlers take them: before that, Python's defaults would
    # end the worker with a traceback.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        asyncio.run(_serve_until_stopped(settings, sock, parent_pid, seat))
    finally:
        # What remains is cleaning up, which a late Ctrl-C must not cut short.
        for signum in STOP_SIGNALS:
            signal.signal(signum, _ignore_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _ignore_signal(_signum, _frame) -> None:
    """A handler rather than SIG_IGN, which a program this one started would inherit."""


async def _serve_until_stopped(
    settings: Settings, sock: socket.socket, parent_pid: int | None, seat: "LoadSeat | None"
) -> None:
    loop = asyncio.get_running_loop()
    stop_asked: asyncio.Future[float] = loop.create_future()

    def ask_stop(signum: int) -> None:
        if stop_asked.done():
            return  # Draining already: a second Ctrl-C, or the parent passing the first on.
        # Blocked from here on, so that none arrives once the loop's handlers are gone.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        if parent_pid is None:
            _log_stop_begins(signum, settings)
        elif os.getppid() != parent_pid:
            logger.warning("worker %d stopping: its parent %d is gone", os.getpid(), parent_pid)
        stop_asked.set_result(time.monotonic())

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, ask_stop, signum)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    runner = web.AppRunner(
        create_app(settings),
        access_log_class=AccessLogger,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()
    acceptor = FairAcceptor(sock, runner.server, seat)
    try:
        started = not stop_asked.done()
        if started:
            acceptor.start()
        began = await stop_asked
        if started:
            # Stop accepting first, then give connections accepted a moment ago time to send
            # their first request: cleanup closes every connection without one at once,
            # which would drop a request already on its way.
            acceptor.stop()
            await asyncio.sleep(ACCEPTED_GRACE)
    finally:
        acceptor.stop()
        await runner.cleanup()

    if parent_pid is None:
        _log_stop_ends(began)
    elif os.getppid() != parent_pid:
        logger.info("worker %d stopped in %.1f s", os.getpid(), time.monotonic() - began)


#: Seconds a worker stops accepting after the system refused it a file or memory.
ACCEPT_PAUSE = 1.0
#: Connections a worker may hold beyond the least loaded worker and still take a new one.
SPREAD_SLACK = 2
#: Seconds a worker leaves a new connection to a less loaded one before it looks again,
#: and how long in all before it takes the connection itself (the other may be stuck).
DEFER_STEP = 0.001
DEFER_LIMIT = 0.02
#: Seconds a worker takes every connection after the others left one waiting DEFER_LIMIT:
#: a stopped or blocked worker's count is never updated, and must not slow the others.
DEFER_BACKOFF = 1.0


class LoadSeat:
    """A worker's place in the open-connection counts that all workers of one parent share.

    The counts live in shared memory made before the workers are forked. A worker writes its
    own each time a connection waits; a seat whose worker died reads as full until the
    replacement writes its own.
    """

    FULL = 2**62

    def __init__(self, counts, index: int) -> None:
        self._counts = counts
        self.index = index

    @classmethod
    def shared(cls, workers: int) -> list["LoadSeat"]:
        counts = multiprocessing.RawArray("q", workers)
        return [cls(counts, index) for index in range(workers)]

    def write(self, count: int) -> None:
        self._counts[self.index] = count

    def least(self) -> int:
        return min(self._counts)


class FairAcceptor:
    """Accepts connections on a listening socket that every worker shares, and spreads them.

    asyncio's own server accepts as many waiting connections as its backlog (128 through
    aiohttp) each time the socket is ready, so the first worker to wake took most of a
    burst: of 32 connections opened at once, by one client 26 to 32 and by wrk 17 to 26 went
    to one of two workers, which then served near its own limit while the other idled. Every worker
    wakes when a connection waits; this one takes one at a time, and leaves it to another
    worker while it holds more than SPREAD_SLACK connections beyond the least loaded one
    (for DEFER_LIMIT at most; when nobody took it by then, the other may be stopped, and
    this worker takes every connection for DEFER_BACKOFF). ``seat`` None (a single
    process) takes every connection.
    Accepted connections go to ``protocol_factory`` (an aiohttp server) as asyncio's would.
    """

    def __init__(self, sock: socket.socket, protocol_factory, seat: LoadSeat | None = None):
        self._sock = sock
        self._protocol_factory = protocol_factory
        self._seat = seat
        self._loop = asyncio.get_running_loop()
        self._reading = False
        self._stopped = False
        self._deferring_since: float | None = None
        self._takes_all_until = 0.0
        self._connecting: set[asyncio.Task] = set()

    def start(self) -> None:
        self._sock.setblocking(False)
        if self._seat is not None:
            self._seat.write(0)
        self._read()

    def stop(self) -> None:
        """Accepts no more connections, and closes this process's copy of the socket (new
        connections are refused once every copy is closed); those accepted stay with the
        aiohttp server."""
        self._stopped = True
        self._pause()
        self._sock.close()

    def _read(self) -> None:
        if not self._reading and not self._stopped:
            self._reading = True
            self._loop.add_reader(self._sock.fileno(), self._accept_one)

    def _pause(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._sock.fileno())

    def _leaves_it_to_another(self) -> bool:
        """Whether a less loaded worker should take the waiting connection (noted now)."""
        if self._seat is None:
            return False
        held = len(self._protocol_factory.connections) + len(self._connecting)
        self._seat.write(held)
        now = self._loop.time()
        if held <= self._seat.least() + SPREAD_SLACK or now < self._takes_all_until:
            self._deferring_since = None
            return False
        if self._deferring_since is None:
            self._deferring_since = now
        if now - self._deferring_since >= DEFER_LIMIT:
            self._deferring_since = None
            self._takes_all_until = now + DEFER_BACKOFF
            return False
        return True

    def _accept_one(self) -> None:
        if self._leaves_it_to_another():
            # Still ready for this worker too: looking again at once would spin.
            self._pause()
            self._loop.call_later(DEFER_STEP, self._read)
            return
        try:
            connection, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # Another worker took it, or its client gave up first.
        except OSError as error:
            # Out of files or memory: the connection stays queued, and the socket, ready
            # again at once, would spin this loop.
            logger.warning("cannot accept connections for %g s: %r", ACCEPT_PAUSE, error)
            self._pause()
            self._loop.call_later(ACCEPT_PAUSE, self._read)
            return
        task = self._loop.create_task(self._connect(connection))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, connection)
        except OSError:
            connection.close()  # Gone before it was set up: nothing to answer.


def _log_stop_begins(signum: int, settings: Settings) -> None:
    logger.info(
        "stopping on %s; requests in flight have %g s to finish",
        signal.Signals(signum).name,
        settings.shutdown_timeout,
    )


def _log_stop_ends(began: float) -> None:
    logger.info("stopped in %.1f s", time.monotonic() - began)


#: prctl(2)'s option that names the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def _stop_with_parent(parent_pid: int) -> None:
    """Has the kernel send SIGTERM to this worker when its parent dies, even by SIGKILL.

    Linux only; elsewhere a worker outlives a killed parent. A parent that died before the
    request was made is seen here, as the worker is no longer its child, and treated alike.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    arguments = (_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if libc.prctl(*(ctypes.c_ulong(argument) for argument in arguments)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_PDEATHSIG): {os.strerror(code)}")

    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)  # Held back until the worker's loop takes it.


#: The variable that puts prometheus_client in its mode for several processes.
METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def _metrics_directory(var_dir: Path):
    """An empty directory for the workers' metric files, named in the environment.

    Made before anything imports prometheus_client, which reads the variable once. An
    operator's own PROMETHEUS_MULTIPROC_DIR is used when set, emptied first (files of an
    earlier run would add its numbers to this one's) and kept; one made here is removed.
    XXX: a parent killed with SIGKILL leaves its var/run/metrics-PID behind; nothing clears
    directories of parents that are gone.
    """
    given = os.environ.get(METRICS_DIRECTORY)
    directory = Path(given) if given else var_dir / "run" / f"metrics-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_DIRECTORY] = str(directory)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)


def _forget_worker(pid: int) -> None:
    """Drops a dead worker's gauges from the sums, so the pool counts only live workers."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


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
        with closing_bound(bind(settings, unix_path)) as bound:
            serve(settings, workers=workers, sock=bound)
        return
    where = address(sock)
    logger.info("serving on %s with %d worker(s)", where, workers)
    print(f"printapi serving on {where} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    with _metrics_directory(settings.var_dir):
        if workers == 1:
            _run_worker(settings, sock)
            return
        try:
            _Supervisor(settings, sock, workers).run()
        finally:
            sock.close()


_HANDLED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)


class _Supervisor:
    """The parent of the workers: replaces one that dies, and stops them all on a signal.

    Signals are turned into bytes on a pipe (``signal.set_wakeup_fd``) and handled in one
    loop, so a signal that arrives while the loop is busy is never lost. A worker that dies
    before it has run for ``STEADY_AFTER`` seconds counts as failing at start; after
    ``START_FAILURES`` of those in a row the parent stops everything rather than loop forever
    on a broken configuration.
    """

    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        self.settings = settings
        self.sock = sock
        self.count = count
        self.started_at: dict[int, float] = {}  # pid -> monotonic time it was forked
        self.seats = LoadSeat.shared(count)
        self.seat_of: dict[int, LoadSeat] = {}  # pid -> its seat
        self.caught: list[int] = []
        self.start_failures = 0
        self.respawn_at: float | None = None
        self.wake_pipe: tuple[int, int] = (-1, -1)

    def run(self) -> None:
        self.wake_pipe = wake_read, wake_write = os.pipe()
        for end in self.wake_pipe:
            os.set_blocking(end, False)
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        previous_sigchld = signal.signal(signal.SIGCHLD, self._catch)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._catch)
        try:
            for _ in range(self.count):
                self._spawn()
            self._loop(wake_read)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            signal.signal(signal.SIGCHLD, previous_sigchld)
            # What remains is cleaning up, which a late Ctrl-C must not cut short.
            for signum in STOP_SIGNALS:
                signal.signal(signum, _ignore_signal)
            os.close(wake_read)
            os.close(wake_write)

    def _catch(self, signum, _frame) -> None:
        self.caught.append(signum)

    def _loop(self, wake_read: int) -> None:
        while True:
            timeout = None
            if self.respawn_at is not None:
                timeout = max(0.0, self.respawn_at - time.monotonic())
            select.select([wake_read], [], [], timeout)
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 512)

            caught, self.caught = self.caught, []
            stop = next((s for s in caught if s in (signal.SIGTERM, signal.SIGINT)), None)
            if stop is not None:
                began = time.monotonic()
                _log_stop_begins(stop, self.settings)
                failed = self._stop(stop)
                _log_stop_ends(began)
                if failed:
                    raise WorkerError(f"{failed} of {self.count} workers exited with an error")
                return
            self._reap()
            if self.respawn_at is not None and time.monotonic() >= self.respawn_at:
                self.respawn_at = None
                while len(self.started_at) < self.count:
                    self._spawn()

    def _spawn(self) -> None:
        taken = {seat.index for seat in self.seat_of.values()}
        seat = next(seat for seat in self.seats if seat.index not in taken)
        # Signals wait until the child has its own handlers: a SIGTERM caught by the parent's
        # handler in the child would only be noted, and the worker would never stop.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            for end in self.wake_pipe:
                os.close(end)
            for signum in _HANDLED:
                signal.signal(signum, signal.SIG_DFL)
            # SIGINT and SIGTERM stay held back until the worker's loop takes them.
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked | STOP_SIGNALS)
            code = 0
            try:
                _stop_with_parent(parent_pid)
                _run_worker(self.settings, self.sock, parent_pid, seat)
            except BaseException:
                logger.exception("worker %d failed", os.getpid())
                code = 1
            # os._exit skips logging's own shutdown: the last lines would wait forever.
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(code)
        self.started_at[pid] = time.monotonic()
        self.seat_of[pid] = seat
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _reap(self) -> None:
        """Collects every worker that has exited, and plans its replacement."""
        while self.started_at:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started_at = self.started_at.pop(pid, None)
            if started_at is None:
                continue
            self.seat_of.pop(pid).write(LoadSeat.FULL)  # Taken by nobody until replaced.
            _forget_worker(pid)
            lived = time.monotonic() - started_at
            logger.error(
                "worker %d exited with %s after %.1f s; starting another",
                pid,
                _describe(status),
                lived,
            )
            self.start_failures = self.start_failures + 1 if lived < STEADY_AFTER else 0
            if self.start_failures >= START_FAILURES:
                self._stop(signal.SIGTERM)
                raise WorkerError(
                    f"workers failed {START_FAILURES} times in a row within {STEADY_AFTER:g} s "
                    "of starting; the log says why"
                )
            if self.respawn_at is None:
                # A worker that dies at once is retried after a pause, not in a tight loop.
                pause = RESPAWN_PAUSE if self.start_failures else 0.0
                self.respawn_at = time.monotonic() + pause

    def _stop(self, signum: int) -> int:
        """Passes the stop signal on and waits for every worker, killing one that hangs.

        Returns how many workers exited with an error or had to be killed.
        """
        # The workers close their copies as they start to stop; with this one closed too,
        # new connections are refused at once, unless a service manager holds the socket.
        self.sock.close()
        for pid in self.started_at:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        failed = 0
        patience = ACCEPTED_GRACE + self.settings.shutdown_timeout + STOP_MARGIN
        deadline = time.monotonic() + patience
        while self.started_at and time.monotonic() < deadline:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
            elif self.started_at.pop(pid, None) is not None and os.waitstatus_to_exitcode(status):
                failed += 1
        for pid in self.started_at:
            logger.error("worker %d did not stop within %g s; killing it", pid, patience)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            failed += 1
        self.started_at.clear()
        return failed


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"


class WorkerError(Exception):
    """A worker process ended with an error; its log says why."""
