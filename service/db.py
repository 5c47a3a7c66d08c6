"""The data layer: the connection pool, and the runner that binds every statement to a user."""

import contextlib
import logging

import asyncpg

from service.queries import Queries, Query

logger = logging.getLogger(__name__)


class DatabaseUnavailableError(Exception):
    """No connection could be had in time: the database is down, or every connection is busy."""


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
        server_settings={
            "application_name": "printapi",
            "statement_timeout": timeout_ms,
            "timezone": "UTC",
            # Short statements: compiling them costs more than it saves.
            "jit": "off",
            # Storage is solid-state: at the default of 4 the planner walks the primary key
            # past every other user's prints rather than read one user's index entries.
            "random_page_cost": "1.1",
        },
    )


@contextlib.asynccontextmanager
async def acquire(pool: asyncpg.Pool, timeout: float):
    """A pooled connection, or DatabaseUnavailableError when none comes within ``timeout``."""
    try:
        connection = await pool.acquire(timeout=timeout)
    except (
        TimeoutError,
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
    ) as error:
        raise DatabaseUnavailableError(str(error) or type(error).__name__) from error
    try:
        yield connection
    finally:
        await pool.release(connection)


class UserData:
    """Runs statements from sql/ on behalf of one authenticated user.

    The user's id is always bound as ``$1``, so every statement a handler runs is written
    for one user and cannot be called for another: handlers get this object, never a bare
    connection.
    """

    def __init__(self, connection: asyncpg.Connection, queries: Queries, user_id: int) -> None:
        self._connection = connection
        self.queries = queries
        self.user_id = user_id

    def _statement(self, name: str) -> Query:
        query = getattr(self.queries, name)
        if query.parameter_count == 0:
            raise ValueError(f"sql/{name}.sql takes no user id and cannot run for a user")
        return query

    async def fetch(self, name: str, *args) -> list[asyncpg.Record]:
        """All rows of statement ``name`` run with (user id, *args)."""
        return await self._connection.fetch(self._statement(name).text, self.user_id, *args)

    async def fetchrow(self, name: str, *args) -> asyncpg.Record | None:
        """The first row of statement ``name`` run with (user id, *args), or None."""
        return await self._connection.fetchrow(self._statement(name).text, self.user_id, *args)

    async def execute(self, name: str, *args) -> str:
        """Runs statement ``name`` with (user id, *args); returns the command status."""
        return await self._connection.execute(self._statement(name).text, self.user_id, *args)

    def cursor(self, name: str, *args):
        """A server-side cursor over statement ``name``: await it inside ``transaction()``."""
        return self._connection.cursor(self._statement(name).text, self.user_id, *args)

    def transaction(self, **options):
        """A transaction on the request's connection."""
        return self._connection.transaction(**options)
