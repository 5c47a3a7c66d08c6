"""One line per request, with what an operator greps for, at the cost of one log call."""

import logging

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
