"""One line per request, with what an operator greps for, at the cost of one log call; and
the handler that writes the lines of one loop iteration together."""

import asyncio
import logging
import select

from aiohttp.abc import AbstractAccessLogger

from service.db import CONNECTION_FAILURES
from service.forwarded import client
from service.keys import REQUEST_ID, USER_ID


class AccessLogger(AbstractAccessLogger):
    """``method path status ms user request route client``, space-separated key=value pairs.

    The route is the pattern that matched (``/api/v1/prints/{print_id}/``), so lines group
    by endpoint; the request id is the one sent back in X-Request-ID. aiohttp's own access
    logger formats a dozen fields and took 15% of a worker's time on a 304
    (docs/performance.md).
    """

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request, response, time: float) -> None:
        # A request that aiohttp's parser refused never reached the router: it has no route,
        # no app and so no trusted proxies; its client is the peer.
        try:
            resource = getattr(request.match_info.route, "resource", None)
            address = client(request).address
        except (AssertionError, AttributeError):  # aiohttp asserts that match_info is set.
            resource, address = None, request.remote
        self.logger.info(
            "method=%s path=%s status=%d ms=%.1f user=%s request=%s route=%s client=%s",
            request.method,
            # Still percent-encoded: a decoded path could carry a line break into the log.
            request.rel_url.raw_path,
            response.status,
            time * 1000,
            request.get(USER_ID, "-"),
            request.get(REQUEST_ID, "-"),
            resource.canonical if resource is not None else "-",
            address or "unix",
        )


class BriefConnectionFailures(logging.Filter):
    """Logs a failed connect as one line, without its traceback.

    While the database is down, asyncpg's pool logs each failed attempt to reopen its
    minimum of connections with a traceback. The failure is expected and says nothing about
    the code, and a traceback in this service's log means a bug.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, CONNECTION_FAILURES):
            record.msg = f"{record.getMessage()}: {error!r}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class BatchingStreamHandler(logging.StreamHandler):
    """A StreamHandler that, inside a running event loop, writes the lines logged during one
    loop iteration together at its end, rather than one write (a system call) per line.

    Each write holds whole lines and at most PIPE_BUF bytes (a longer line goes alone): the
    workers share one stderr, and a pipe keeps only such writes from being interleaved with
    another process's. One write of a whole iteration's lines came out mixed with the other
    worker's under `| tee` or a container's log pipe.

    Under load an iteration answers many requests: their access lines go out together, at
    most one iteration late. Outside a loop, and from other threads, a line goes out at once.
    ``flush()`` writes what waits; call it before a process ends without running
    ``logging.shutdown()`` (os._exit).
    XXX: a loop that hangs holds the lines of its iteration until it runs again, so the
    last lines before a hang show up only after it.
    """

    def __init__(self, stream=None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            self._waiting.append(line)
            self.flush()
            return
        if self._loop is not loop:
            # A new loop (or the first): what waits for a loop that is gone goes out now.
            self.flush()
            self._loop = loop
        if not self._waiting:
            loop.call_soon(self.flush)
        self._waiting.append(line)

    def flush(self) -> None:
        with self.lock:
            waiting, self._waiting = self._waiting, []
            try:
                for chunk in _whole_lines_up_to(select.PIPE_BUF, waiting):
                    self.stream.write(chunk)
                    self.stream.flush()
                self.stream.flush()
            except (OSError, ValueError):
                # The stream is gone (a closed pipe or file): there is nowhere left to say
                # so, and raising here would only log another line to the same stream.
                pass


def _whole_lines_up_to(limit: int, lines: list[str]):
    """The lines joined into chunks of at most ``limit`` bytes each, never splitting one."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode("utf-8", "surrogateescape"))
        if chunk and size + length > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield "".join(chunk)
