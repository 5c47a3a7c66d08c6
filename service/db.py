"""The data layer: the connection pool, and the runner that binds every statement to a user."""

import contextlib
import logging

import asyncpg

from service.queries import Queries

logger = logging.getLogger(__name__)


class DatabaseUnavailableError(Exception):
    """No connection could be had in time: the database is down, or every connection is busy."""


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


async def create_pool(dsn: str, settings, counter: StatementCounter) -> asyncpg.Pool:
    """Opens the pool the app shares; statements that run too long are cancelled server-side."""
    timeout_ms = str(int(settings.statement_timeout * 1000))
    return await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=counter.watch,
        reset=_keep_session,
        server_settings={**PLANNER_SETTINGS, "statement_timeout": timeout_ms},
    )


class Lease:
    """A request's pooled connection: taken on first use, given back when the request ends.

    A request answered from memory never takes one. A handler that waits on a slow client
    gives it back meanwhile (``release``), so slow readers cannot hold the pool.
    """

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._connection: asyncpg.Connection | None = None

    async def connection(self) -> asyncpg.Connection:
        """The connection, taken from the pool if needed; DatabaseUnavailableError if none
        comes within the acquire timeout."""
        if self._connection is None:
            try:
                self._connection = await self._pool.acquire(timeout=self._timeout)
            except (
                TimeoutError,
                OSError,
                asyncpg.PostgresConnectionError,
                asyncpg.CannotConnectNowError,
            ) as error:
                raise DatabaseUnavailableError(str(error) or type(error).__name__) from error
        return self._connection

    async def release(self) -> None:
        """Gives the connection back to the pool; the next use takes one again."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.release(connection)


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
        """A transaction on the request's connection."""
        connection = await self._lease.connection()
        async with connection.transaction(**options):
            yield

    async def release(self) -> None:
        """Gives the connection back to the pool until the next statement; not in a transaction."""
        await self._lease.release()
