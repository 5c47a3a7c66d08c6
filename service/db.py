"""The data layer: the connection pool, and the runner that binds every statement to a user."""

import asyncio
import contextlib
import logging

import asyncpg

from service.queries import Queries

logger = logging.getLogger(__name__)


class DatabaseUnavailableError(Exception):
    """No connection could be had in time: the database is down, or every connection is busy."""


class LongRequestsBusyError(DatabaseUnavailableError):
    """A long request found every connection long requests may hold taken, for too long."""


#: What the server says when it cannot serve a session: the connection is gone, it is shutting
#: down or starting up, or it has no connection slot left.
SERVER_GONE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
#: Errors of a connect: those, or a network error, or no answer in time.
CONNECTION_FAILURES = (OSError, TimeoutError, *SERVER_GONE)
#: A statement gave up waiting: the statement timeout, or the client-side command timeout
#: when the server does not answer at all.
STATEMENT_TIMED_OUT = (asyncpg.QueryCanceledError, TimeoutError)
#: A statement gave up waiting for a lock (the lock timeout), or was chosen to break a
#: deadlock: the same request may work a moment later.
LOCK_GIVEN_UP = (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError)


#: Session settings of every pooled connection; the plan tests use them too.
PLANNER_SETTINGS = {
    "application_name": "printapi",
    "timezone": "UTC",
    # Short statements: compiling them costs more than it saves.
    "jit": "off",
    # Storage is solid-state: at the default of 4 the planner walks the primary key past
    # every other user's prints rather than read one user's index entries.
    "random_page_cost": "1.1",
}


class StatementCounter:
    """Counts the statements run on the pool's connections: one round trip each."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _record) -> None:
        self.count += 1

    async def watch(self, connection: asyncpg.Connection) -> None:
        """The pool's ``init``: counts the statements of each new connection."""
        connection.add_query_logger(self)


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """The pool's ``reset``: nothing to undo, since requests change no session state.

    asyncpg still rolls back a transaction left open before calling it. Its default reset
    (RESET ALL, UNLISTEN *, ...) would cost one more round trip on every request.
    """


#: Seconds past the statement timeout after which the client gives up on a statement itself:
#: a server that stopped answering (hung, or cut off without a reset) cancels nothing.
COMMAND_TIMEOUT_MARGIN = 2.0


def _milliseconds(seconds: float) -> str:
    return str(max(1, int(seconds * 1000)))


def session_settings(settings) -> dict[str, str]:
    """The settings every pooled session runs with: the planner's and both timeouts."""
    return {
        **PLANNER_SETTINGS,
        "statement_timeout": _milliseconds(settings.statement_timeout),
        "lock_timeout": _milliseconds(settings.lock_timeout),
    }


#: The startup parameters a transaction pooler keeps. PgBouncer refuses a connection that
#: sends any other: a session setting given at startup could not follow the client from one
#: server connection to the next.
POOLER_STARTUP_SETTINGS = ("application_name", "timezone")
#: The session settings that must therefore be set on the pooler's server connections
#: (deploy/pgbouncer.ini's connect_query, or ALTER ROLE ... SET).
POOLER_SERVER_SETTINGS = ("jit", "random_page_cost", "statement_timeout", "lock_timeout")


def connect_options(settings) -> dict:
    """The options of every pooled connection besides the pool's own.

    Behind a transaction pooler each transaction may run on another server connection: a
    statement prepared under a name on one is unknown on the next, or its name is taken
    there by another client's. ``statement_cache_size=0`` makes asyncpg send each statement
    unnamed, and parse it again together with its parameters, which the pooler keeps on one
    server connection; that costs a round trip per statement, and only then. Only the
    startup parameters such a pooler keeps are sent.
    """
    server_settings = session_settings(settings)
    if not settings.transaction_pooling:
        return {"server_settings": server_settings}
    return {
        "server_settings": {name: server_settings[name] for name in POOLER_STARTUP_SETTINGS},
        "statement_cache_size": 0,
    }


async def create_pool(dsn: str, settings, counter: StatementCounter) -> asyncpg.Pool:
    """Opens the pool the app shares.

    The server cancels a statement that runs past the statement timeout, or that waits for
    a lock past the lock timeout; the client gives up on one whose answer does not come
    COMMAND_TIMEOUT_MARGIN seconds after that.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=counter.watch,
        reset=_keep_session,
        command_timeout=settings.statement_timeout + COMMAND_TIMEOUT_MARGIN,
        **connect_options(settings),
    )


async def pooler_settings_missing(pool: asyncpg.Pool, queries: Queries, settings) -> list[str]:
    """The session settings a transaction pooler's server connection lacks, each described.

    A pooler's connect_query that fails is only logged by the pooler, and a setting left
    out falls back to the server's default silently: no statement timeout, slow plans.
    """
    expected = session_settings(settings)
    rows = await pool.fetch(queries.session_settings.text, list(POOLER_SERVER_SETTINGS))
    found = {row["name"]: row["setting"] for row in rows}
    return [
        f"{name} is {found.get(name)!r}, not {expected[name]!r}"
        for name in POOLER_SERVER_SETTINGS
        if found.get(name) != expected[name]
    ]


#: Seconds a connection whose statement failed oddly is given to show that its server closed it.
CLOSING_GRACE = 0.2


class Lease:
    """A request's pooled connection: taken on first use, given back when the request ends.

    A request answered from memory never takes one. A handler that waits on a slow client
    gives it back meanwhile (``release``), so slow readers cannot hold the pool.

    A request that may hold its connection long (a PATCH waiting for a row lock, a list
    without a limit) takes one of ``long_requests`` first: a semaphore smaller than the
    pool, so that such requests can never hold every connection and polled reads always
    find one.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        timeout: float,
        long_requests: asyncio.Semaphore | None = None,
    ) -> None:
        self._pool = pool
        self._timeout = timeout
        self._long_requests = long_requests
        self._connection: asyncpg.Connection | None = None

    async def connection(self) -> asyncpg.Connection:
        """The connection, taken from the pool if needed; DatabaseUnavailableError if none
        comes within the acquire timeout (LongRequestsBusyError when a long request waited
        that long for its share)."""
        if self._connection is None:
            deadline = asyncio.get_running_loop().time() + self._timeout
            await self._take_long_request_share(deadline)
            try:
                remaining = max(0.0, deadline - asyncio.get_running_loop().time())
                self._connection = await self._pool.acquire(timeout=remaining)
            except BaseException as error:
                self._give_back_long_request_share()
                # The server refusing a new connection (its database dropped, the role or
                # password no longer valid) is an outage for this request, like no answer.
                if isinstance(error, (*CONNECTION_FAILURES, asyncpg.PostgresError)):
                    reason = str(error) or type(error).__name__
                    raise DatabaseUnavailableError(reason) from error
                raise
        return self._connection

    async def _take_long_request_share(self, deadline: float) -> None:
        if self._long_requests is None:
            return
        try:
            async with asyncio.timeout_at(deadline):
                await self._long_requests.acquire()
        except TimeoutError:
            raise LongRequestsBusyError(
                f"no connection for long requests came in {self._timeout} s"
            ) from None

    def _give_back_long_request_share(self) -> None:
        if self._long_requests is not None:
            self._long_requests.release()

    async def release(self) -> None:
        """Gives the connection back to the pool; the next use takes one again.

        A connection that cannot be reset (its server went away or stopped answering) is
        closed by the pool; that is no fault of the request, whose answer stands.
        """
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await self._pool.release(connection, timeout=self._timeout)
        except CONNECTION_FAILURES as error:
            logger.warning("closed a connection that could not be reset: %r", error)
        finally:
            self._give_back_long_request_share()

    def discard(self) -> None:
        """Closes the connection rather than give it back: its server cut it or stopped
        answering, and no other request may inherit it. Closing it rolls back its transaction.
        """
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if not _is_closed(connection):
            connection.terminate()
        self._give_back_long_request_share()

    async def closed_by_server(self) -> bool:
        """True when the server has closed the held connection, or does so within a moment.

        asyncpg reports a statement on a connection whose server is ending the session as a
        misuse: "connection is closed", or, when the server's farewell arrived while the
        connection sat idle in the pool, "another operation is in progress" (it waits for the
        socket to close). The socket closes right after the farewell: this waits that long.
        """
        deadline = asyncio.get_running_loop().time() + CLOSING_GRACE
        while self._connection is not None and not _is_closed(self._connection):
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return self._connection is not None


def _is_closed(connection) -> bool:
    """Whether a pooled connection is closed; the pool takes back one that closed."""
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:
        return True


class UserData:
    """Runs statements from sql/ on behalf of one authenticated user.

    The user's id is always bound as ``$1``, so every statement a handler runs is written
    for one user and cannot be called for another: handlers get this object, never a bare
    connection.
    """

    def __init__(self, lease: Lease, queries: Queries, user_id: int) -> None:
        self._lease = lease
        self.queries = queries
        self.user_id = user_id

    def _statement(self, name: str) -> str:
        query = getattr(self.queries, name)
        if query.parameter_count == 0:
            raise ValueError(f"sql/{name}.sql takes no user id and cannot run for a user")
        return query.text

    async def fetch(self, name: str, *args) -> list[asyncpg.Record]:
        """All rows of statement ``name`` run with (user id, *args)."""
        connection = await self._lease.connection()
        return await connection.fetch(self._statement(name), self.user_id, *args)

    async def fetchrow(self, name: str, *args) -> asyncpg.Record | None:
        """The first row of statement ``name`` run with (user id, *args), or None."""
        connection = await self._lease.connection()
        return await connection.fetchrow(self._statement(name), self.user_id, *args)

    async def execute(self, name: str, *args) -> str:
        """Runs statement ``name`` with (user id, *args); returns the command status."""
        connection = await self._lease.connection()
        return await connection.execute(self._statement(name), self.user_id, *args)

    @contextlib.asynccontextmanager
    async def transaction(self, **options):
        """A transaction on the request's connection: committed when the block ends, else
        rolled back.

        When the server cut the session or stopped answering, no ROLLBACK is sent (it would
        fail, or wait): the connection is closed, which ends the transaction on the server.
        """
        connection = await self._lease.connection()
        transaction = connection.transaction(**options)
        await transaction.start()
        try:
            yield
        except (*SERVER_GONE, TimeoutError):
            self._lease.discard()
            raise
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()

    async def release(self) -> None:
        """Gives the connection back to the pool until the next statement; not in a transaction."""
        await self._lease.release()

    def discard(self) -> None:
        """Closes the connection instead of giving it back; the next statement takes another."""
        self._lease.discard()
