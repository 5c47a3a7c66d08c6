"""What runs around every handler: JSON errors, a pooled connection, authentication, ownership.

Order, outermost first: errors, session cookie, connection, authentication, ownership. A
handler therefore only runs for an authenticated user, and a handler of a route with a
``{print_id}`` only runs when that print is live and belongs to that user.
"""

import itertools
import logging
import os
import re
import secrets

import asyncpg
from aiohttp import web
from aiohttp_session import get_session

from service import errors
from service.auth import SAFE_METHODS, is_cross_site, parse_authorization, token_digest
from service.db import (
    LOCK_GIVEN_UP,
    SERVER_GONE,
    STATEMENT_TIMED_OUT,
    DatabaseUnavailableError,
    Lease,
    LongRequestsBusyError,
    UserData,
)
from service.forwarded import client
from service.keys import (
    DATA,
    FEED,
    KEPT_ANSWER,
    LEASE,
    LONG_REQUESTS,
    METRICS,
    POOL,
    PRINT,
    PRINT_ID,
    PRINT_VERSION,
    QUERIES,
    REQUEST_ID,
    SETTINGS,
    USER_ID,
)
from service.models import Print, dumps
from service.params import MAX_BIGINT

logger = logging.getLogger(__name__)

#: The status logged for a request whose client left before the answer (as nginx does).
CLIENT_CLOSED_REQUEST = 499

#: The key, in the encrypted session cookie, of the login's session token.
SESSION_TOKEN = "token"


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Turns every error into the contract's JSON body; the only place that logs a crash."""
    request_id = _request_id(request.headers.get("X-Request-ID"))
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.content_type == "application/json" or error.status < 400:
            raise
        response = _json_error(error)
    except ConnectionError:
        # The client went away mid-request, as phones and closed tabs do: not a server fault.
        # 499 is nginx's status for it; nobody is left to read this answer.
        logger.info(
            "client disconnected during %s %s (request %s)",
            request.method,
            request.path,
            request_id,
            extra={"request_id": request_id},
        )
        response = web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
    except (DatabaseUnavailableError, *SERVER_GONE, *STATEMENT_TIMED_OUT, *LOCK_GIVEN_UP) as error:
        logger.warning(
            "database unavailable: %r (request %s)",
            error,
            request_id,
            extra={"request_id": request_id},
        )
        kind, detail = _why_unavailable(error)
        request.app[METRICS].database_errors.labels(kind).inc()
        response = as_response(errors.ServiceUnavailable(detail))
    except Exception as error:
        if isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError):
            request.app[METRICS].database_errors.labels("other").inc()
        logger.exception(
            "unexpected error in %s %s (request %s)",
            request.method,
            request.path,
            request_id,
            extra={"request_id": request_id},
        )
        response = as_response(errors.ServerError())
    return response


def _why_unavailable(error: Exception) -> tuple[str, str]:
    """Why the database could not serve a request that answers 503: the kind label of
    printapi_db_errors_total, and the detail the client is told."""
    if isinstance(error, STATEMENT_TIMED_OUT):
        return "too_slow", errors.TOO_SLOW
    if isinstance(error, LOCK_GIVEN_UP):
        return "locked", errors.LOCKED
    if isinstance(error, LongRequestsBusyError):
        return "busy", errors.LONG_REQUESTS_BUSY
    return "unreachable", errors.UNREACHABLE


async def send_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: every response, streamed ones too, names its request for the logs."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id


#: Sent with every response the app makes. A JSON API has nothing for a browser to render,
#: run, frame or load: a response opened as a page does nothing, and leaks no Referer.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

#: Answers carry personal data or a verdict on credentials: no cache may keep them, unless
#: the handler says how (the polled answers' ``private, no-cache`` keeps ETags working).
DEFAULT_CACHE_CONTROL = "no-store"

#: Browsers that saw the service over HTTPS use nothing else for a year.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


async def send_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: the security headers on every response, errors and streams included.

    Strict-Transport-Security only when the service is reached over HTTPS: it says so
    (PRINTAPI_COOKIE_SECURE), or a trusted proxy does (X-Forwarded-Proto). Over plain HTTP a
    browser ignores it anyway.
    """
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", DEFAULT_CACHE_CONTROL)
    if request.app[SETTINGS].cookie_secure or client(request).scheme == "https":
        response.headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY


#: What a client's X-Request-ID may hold: the characters of UUIDs, hex and base64 ids. Not
#: spaces or '=', or a client could write key=value pairs of its own into the access line.
REQUEST_ID_FORM = re.compile(r"[A-Za-z0-9._:/+-]{1,128}")


def _request_id(given: str | None) -> str:
    """The client's X-Request-ID when it is a plain token, else a new one."""
    if given and REQUEST_ID_FORM.fullmatch(given):
        return given
    return request_ids.next()


class RequestIds:
    """Unique ids without a system call each: 16 random hex digits drawn once per process
    (again after a fork), then a counter in 16 more. An id names a request in the logs; it
    guards nothing, so it need not be unpredictable. secrets.token_hex was 2% of a 304."""

    def __init__(self) -> None:
        self._start()
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


request_ids = RequestIds()


def as_response(error: web.HTTPException) -> web.Response:
    """The error as a plain response: aiohttp wants HTTP exceptions raised, not returned."""
    return web.Response(status=error.status, body=error.body, headers=error.headers)


def _json_error(error: web.HTTPException) -> web.Response:
    """The same status with a ``{"detail": ...}`` body, for errors aiohttp raises itself."""
    if error.status == 404:
        return as_response(errors.NotFound())
    if isinstance(error, web.HTTPMethodNotAllowed):
        detail = f'Method "{error.method}" not allowed.'
    elif error.status == 413:
        detail = "The request body is too large."
    else:
        detail = error.reason
    response = web.json_response({"detail": detail}, status=error.status, dumps=dumps)
    if "Allow" in error.headers:
        response.headers["Allow"] = error.headers["Allow"]
    return response


def _is_public(request: web.Request) -> bool:
    """True for a route whose view says ``public = True``: login, logout, the OpenAPI document.

    The one way a route skips authentication, declared on the view where a reader sees it.
    """
    return getattr(request.match_info.handler, "public", False)


def _is_routed(request: web.Request) -> bool:
    return request.match_info.http_exception is None


@web.middleware
async def connection_middleware(request: web.Request, handler):
    """Gives each routed request a lease on one pooled connection, taken on first use.

    A view whose ``takes_long(request)`` is true for the request leases from the share of
    the pool that long requests may hold (service.db.Lease).
    """
    if not _is_routed(request):
        return await handler(request)

    takes_long = getattr(request.match_info.handler, "takes_long", None)
    long_requests = request.app[LONG_REQUESTS] if takes_long and takes_long(request) else None
    lease = Lease(request.app[POOL], request.app[SETTINGS].acquire_timeout, long_requests)
    request[LEASE] = lease
    try:
        return await handler(request)
    except (*SERVER_GONE, TimeoutError):
        # The server cut the session or stopped answering: no other request may inherit it.
        lease.discard()
        raise
    except (asyncpg.InterfaceError, asyncpg.InternalClientError) as error:
        if await lease.closed_by_server():
            raise DatabaseUnavailableError(str(error)) from error
        raise
    finally:
        await lease.release()


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Finds the user from a token or a session cookie; 401 when there is none, 403 cross-site.

    Replaces the request's bare connection with ``request[DATA]``, the statement runner
    bound to that user: past this point no handler can run a statement for another user.
    """
    if not _is_routed(request) or _is_public(request):
        return await handler(request)

    headers = request.headers.getall("Authorization", [])
    if len(headers) > 1:
        raise errors.Unauthorized("Send one Authorization header, not several.")
    header = headers[0] if headers else None
    if header is not None:
        token = parse_authorization(header)
        if token is None:
            raise errors.Unauthorized("Invalid Authorization header: use Bearer <token>.")
        user_id = await _token_owner(request, "api", token)
        if user_id is None:
            raise errors.Unauthorized("Invalid or revoked token.")
    else:
        session = await get_session(request)
        token = session.get(SESSION_TOKEN)
        if not isinstance(token, str):
            raise errors.Unauthorized("Authentication credentials were not provided.")
        user_id = await _token_owner(request, "session", token)
        if user_id is None:
            session.invalidate()
            raise errors.Unauthorized("The session has ended; log in again.")
        check_same_site(request)

    request[USER_ID] = user_id
    request[DATA] = UserData(request[LEASE], request.app[QUERIES], user_id)
    # From here on the connection is reachable only through the runner bound to the user.
    del request[LEASE]
    return await handler(request)


async def _token_owner(request: web.Request, kind: str, token: str) -> int | None:
    """The user a live token belongs to: from the worker's memory, else from the database."""
    feed = request.app[FEED]
    digest = token_digest(token)
    user_id = feed.token_owner(kind, digest)
    if user_id is not None:
        return user_id

    token_epoch = feed.token_epoch
    queries = request.app[QUERIES]
    connection = await request[LEASE].connection()
    row = await connection.fetchrow(queries.authenticate_token.text, digest, kind)
    if row is None:
        return None
    feed.remember_token(kind, digest, row["user_id"], row["expires_at"], token_epoch)
    return row["user_id"]


def check_same_site(request: web.Request) -> None:
    """Refuses (403) a request that changes data and seems sent by another site's page."""
    if request.method in SAFE_METHODS:
        return
    reason = is_cross_site(request.headers, request.host, request.app[SETTINGS].trusted_origins)
    if reason is not None:
        raise errors.Forbidden(f"Cross-site request refused: {reason}.")


@web.middleware
async def ownership_middleware(request: web.Request, handler):
    """For a route with ``{print_id}``: loads the print, or 404 unless it is live and the user's.

    The same 404 answers a malformed id, a missing print, a deleted one and another user's,
    so ids cannot be probed. Sets ``request[PRINT_ID]``, and ``request[PRINT]``, the Print as
    read in the same round trip, which a GET answers with as it is, with
    ``request[PRINT_VERSION]``, the user's data version it is as of; or, for a GET the
    worker answered before under the user's current data version, ``request[KEPT_ANSWER]``.
    """
    raw = request.match_info.get("print_id")
    if raw is None or not _is_routed(request):
        return await handler(request)

    if not (
        raw.isascii()
        and raw.isdigit()
        and raw[0] != "0"
        and len(raw) <= len(str(MAX_BIGINT))
        and int(raw) <= MAX_BIGINT
    ):
        raise errors.NotFound()
    print_id = int(raw)
    request[PRINT_ID] = print_id
    feed = request.app[FEED]
    user_id = request[USER_ID]
    if request.method == "GET":
        # A GET answered before under the user's current data version was of a live print
        # of theirs then, and nothing of theirs has changed since: no need to read it again.
        version = feed.version(user_id)
        if version is not None:
            answer = feed.answer(user_id, print_answer_key(print_id), version)
            if answer is not None:
                request[KEPT_ANSWER] = answer
                return await handler(request)

    epoch = feed.epoch
    row = await request[DATA].fetchrow("get_print", print_id)
    if row is None:
        raise errors.NotFound()

    feed.remember_version(user_id, row["data_version"], epoch)
    request[PRINT] = Print.from_row(row)
    request[PRINT_VERSION] = row["data_version"]
    return await handler(request)


def print_answer_key(print_id: int) -> tuple[str, int]:
    """What a GET of one print is kept under in the worker's answers (service/answers.py)."""
    return ("print", print_id)
