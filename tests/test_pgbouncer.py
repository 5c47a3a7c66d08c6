"""The service through PgBouncer pooling transactions: deploy/pgbouncer.ini, with only its
paths, port, database and pool size changed, in front of the session's test database.

PgBouncer keeps 2 server connections, so the 8 client connections of `printapi serve
--workers 2` (4 each) take turns on them, and so do the tests' own. What the service does
through it is shown while another user's requests keep both server connections busy; the
other tests show what each setting prevents. PgBouncer is Debian's (``make e2e-tools``);
without it these tests are skipped, unless PRINTAPI_REQUIRE_E2E is set.
"""

import asyncio
import contextlib
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
import attrs
import psutil
import pytest
from yarl import URL

from service import PROJECT_ROOT
from service.app import create_app
from service.db import (
    POOLER_SERVER_SETTINGS,
    StatementCounter,
    create_pool,
    pooler_settings_missing,
)
from service.errors import UNREACHABLE
from service.queries import Queries
from service.settings import Settings
from tests.conftest import TEST_SECRET_KEY
from tests.test_cli import (
    Cli,
    children,
    free_port,
    output,
    running,
    terminate,
    wait_until_answering,
)
from tests.test_deploy import tool

INI = PROJECT_ROOT / "deploy" / "pgbouncer.ini"
#: The password the test's auth_file gives the server's user; PostgreSQL itself trusts it.
PASSWORD = "pgbouncer-test-password"
SERVER_CONNECTIONS = 2
#: Each worker's pool, opened whole at start, so the service holds a known number of clients.
WORKER_POOL = 4
WORKERS = 2
START_TIMEOUT = 10.0
#: Seconds an announcement may take to reach every worker.
ANNOUNCEMENT_WAIT = 2.0
#: Requests each load client makes at most.
LOAD_REQUESTS = 5000
CONNECT_QUERY = re.compile(r" connect_query='[^']*'")


def _rewrite(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is not once in {INI}"
        text = text.replace(old, new)
    return text


class PgBouncer:
    """PgBouncer in the foreground on 127.0.0.1, from deploy/pgbouncer.ini in a directory.

    ``connect_query=False`` leaves out the shipped connect_query: a pooler that does not set
    the service's session settings.
    """

    def __init__(self, directory: Path, database_url: str, connect_query: bool = True) -> None:
        server = URL(database_url)
        self.directory = directory
        self.port = free_port()
        self.log = directory / "pgbouncer.log"
        self.user = server.user
        # The embedded server is reached by a unix socket: its directory is the host.
        host = server.query.get("host") or server.host
        database = f"host={host} port={server.port or 5432} dbname={server.path.lstrip('/')}"
        config = _rewrite(
            INI.read_text(),
            {
                "host=db.internal port=5432 dbname=printapi": database,
                "listen_port = 6432": f"listen_port = {self.port}",
                "auth_file = /etc/pgbouncer/userlist.txt": f"auth_file = {directory}/users.txt",
                "default_pool_size = 20": f"default_pool_size = {SERVER_CONNECTIONS}",
                "logfile = /var/log/postgresql/pgbouncer.log": f"logfile = {self.log}",
                "pidfile = /run/postgresql/pgbouncer.pid": f"pidfile = {directory}/pgb.pid",
            },
        )
        if not connect_query:
            config, count = CONNECT_QUERY.subn("", config)
            assert count == 1, f"no connect_query in {INI}"
        (directory / "pgbouncer.ini").write_text(config)
        (directory / "users.txt").write_text(f'"{self.user}" "{PASSWORD}"\n')

        command = [tool("pgbouncer"), str(directory / "pgbouncer.ini")]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root; it runs as the owner of the embedded
            # server's socket directory, who may reach that socket, or else as nobody.
            owner = Path(host).stat().st_uid if host.startswith("/") else 0
            user = pwd.getpwuid(owner).pw_name if owner else "nobody"
            os.chown(directory, pwd.getpwnam(user).pw_uid, -1)
            command[1:1] = ["-u", user]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def url(self, database: str = "printapi") -> str:
        """A URL of the database PgBouncer serves, with the user's password."""
        return f"postgresql://{self.user}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def read_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    async def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"PgBouncer exited with {self.process.returncode}:\n{self.read_log()}")
            try:
                connection = await asyncpg.connect(self.url(), statement_cache_size=0)
            except (OSError, asyncpg.PostgresError):
                if time.monotonic() > deadline:
                    pytest.fail(f"PgBouncer did not answer:\n{self.read_log()}")
                await asyncio.sleep(0.1)
            else:
                await connection.close()
                return

    def stop(self) -> None:
        """Ends PgBouncer by its process id: SIGTERM, its immediate shutdown."""
        terminate(self.process)


@contextlib.contextmanager
def pgbouncer_directory():
    """A directory of its own for PgBouncer's files, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="printapi-pgbouncer-"))
    os.chmod(directory, 0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@contextlib.asynccontextmanager
async def pgbouncer_running(database_url: str, connect_query: bool = True):
    tool("pgbouncer")
    with pgbouncer_directory() as directory:
        pgbouncer = PgBouncer(directory, database_url, connect_query)
        try:
            await pgbouncer.wait_until_ready()
            yield pgbouncer
        finally:
            pgbouncer.stop()


@attrs.define
class Deployment:
    """PgBouncer, and `printapi serve` through it configured as the README says."""

    pgbouncer: PgBouncer
    server: subprocess.Popen
    cli: Cli
    base: str


def connections_to(port: int, server) -> list[int]:
    """How many connections each worker of ``server`` holds open to 127.0.0.1:``port``."""
    counts = []
    for pid in children(server.pid):
        sockets = psutil.Process(pid).net_connections(kind="tcp")
        established = [s for s in sockets if s.status == psutil.CONN_ESTABLISHED]
        counts.append(sum(1 for s in established if s.raddr and s.raddr.port == port))
    return counts


async def _wait_for_workers(pgbouncer: PgBouncer, server, base: str) -> None:
    """Waits until the service answers and every worker has opened its whole pool."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        await wait_until_answering(server, session, f"{base}/api/v1/prints/")
    deadline = time.monotonic() + START_TIMEOUT
    while connections_to(pgbouncer.port, server) != [WORKER_POOL] * WORKERS:
        if time.monotonic() > deadline:
            pytest.fail(f"the workers did not open their pools:\n{output(server)}")
        await asyncio.sleep(0.1)


def pooled_cli(pgbouncer: PgBouncer, database_url: str, var_dir: Path) -> Cli:
    """The console script with DATABASE_URL on PgBouncer and the README's other settings."""
    cli = Cli(pgbouncer.url(), var_dir)
    cli.extra_env.update(
        PRINTAPI_TRANSACTION_POOLING="true",
        PRINTAPI_DIRECT_DATABASE_URL=database_url,
        PRINTAPI_POOL_MIN_SIZE=str(WORKER_POOL),
        PRINTAPI_POOL_MAX_SIZE=str(WORKER_POOL),
    )
    return cli


@pytest.fixture(scope="module")
def deployment(database_url):
    """PgBouncer in front of the test database and `printapi serve --workers 2` through it,
    both stopped by their process ids at the end of the module."""
    tool("pgbouncer")
    with pgbouncer_directory() as directory:
        pgbouncer = PgBouncer(directory, database_url)
        try:
            asyncio.run(pgbouncer.wait_until_ready())
            cli = pooled_cli(pgbouncer, database_url, directory)
            port = free_port()
            serve = cli.start("serve", "--workers", str(WORKERS), "--port", str(port))
            with running(serve) as server:
                base = f"http://127.0.0.1:{port}"
                asyncio.run(_wait_for_workers(pgbouncer, server, base))
                yield Deployment(pgbouncer, server, cli, base)
        finally:
            pgbouncer.stop()


async def _keep_busy(base: str, headers: dict, print_id: int, stopped: asyncio.Event) -> list:
    """Lists, reads and changes one print on a kept-open connection until ``stopped`` is set,
    at most LOAD_REQUESTS times: the statuses, or the names of the errors met instead."""
    answers = []
    verdicts = ("FAILED", "NOT_FAILED")
    async with aiohttp.ClientSession(base_url=base) as session:
        for n in range(LOAD_REQUESTS):
            if stopped.is_set():
                break
            if n % 3 == 0:
                request = session.get("/api/v1/prints/?limit=5&sorting=date_desc", headers=headers)
            elif n % 3 == 1:
                request = session.get(f"/api/v1/prints/{print_id}/", headers=headers)
            else:
                change = {"alert_overwrite": verdicts[n % 2]}
                request = session.patch(
                    f"/api/v1/prints/{print_id}/", json=change, headers=headers
                )
            try:
                async with request as response:
                    await response.read()
                    answers.append(response.status)
            except aiohttp.ClientError as error:
                answers.append(type(error).__name__)
    return answers


#: What a healthy service never logs.
TROUBLE = re.compile(r" (WARNING|ERROR|CRITICAL) |Traceback")


@pytest.fixture
async def load(deployment, factory, stranger):
    """Another user's requests from 4 clients at once for the length of the test; afterwards,
    every one of them must have answered 200, and the service must have logged no trouble."""
    user_id, headers = stranger
    print_id = await factory.print(user_id)
    logged_before = len(output(deployment.server))
    stopped = asyncio.Event()
    clients = [
        asyncio.create_task(_keep_busy(deployment.base, headers, print_id, stopped))
        for _ in range(4)
    ]
    await asyncio.sleep(0.2)
    yield

    stopped.set()
    per_client = [await client for client in clients]
    answers = [answer for client_answers in per_client for answer in client_answers]
    logged = output(deployment.server)[logged_before:]
    # Each client was still busy when the test ended: none ran out of requests first.
    assert all(0 < len(client_answers) < LOAD_REQUESTS for client_answers in per_client)
    assert set(answers) == {200}, [answer for answer in answers if answer != 200][:10]
    assert [line for line in logged.splitlines() if TROUBLE.search(line)] == []


async def fresh_get(base: str, path: str, headers: dict) -> tuple[int, str | None, bytes]:
    """A GET on a new connection, which either worker may accept: status, ETag, body."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.get(f"{base}{path}", headers=headers) as response,
    ):
        return response.status, response.headers.get("ETag"), await response.read()


async def first_status(base: str, path: str, headers: dict, wanted: int) -> int:
    """Repeats a fresh GET until it answers ``wanted``, for at most ANNOUNCEMENT_WAIT seconds;
    the last status."""
    deadline = time.monotonic() + ANNOUNCEMENT_WAIT
    while True:
        status, _, _ = await fresh_get(base, path, headers)
        if status == wanted or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.05)


# The service through PgBouncer, under load.


async def test_list_through_pgbouncer_answers_the_users_prints(deployment, factory, owner, load):
    user_id, headers = owner
    first = await factory.print(user_id, filename="first.gcode")
    second = await factory.print(user_id, filename="second.gcode")

    status, _, body = await fresh_get(deployment.base, "/api/v1/prints/", headers)

    assert status == 200
    assert sorted(item["id"] for item in json.loads(body)) == [first, second]


async def test_detail_through_pgbouncer_answers_the_print(deployment, factory, owner, load):
    user_id, headers = owner
    print_id = await factory.print(user_id, filename="detail.gcode")

    status, _, body = await fresh_get(deployment.base, f"/api/v1/prints/{print_id}/", headers)

    assert status == 200
    assert (json.loads(body)["id"], json.loads(body)["filename"]) == (print_id, "detail.gcode")


async def test_patch_through_pgbouncer_keeps_the_verdict(deployment, db, factory, owner, load):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            f"{deployment.base}/api/v1/prints/{print_id}/",
            json={"alert_overwrite": "NOT_FAILED"},
            headers=headers,
        ) as response,
    ):
        body = await response.json()

    assert response.status == 200, body
    assert body["alert_overwrite"] == "NOT_FAILED"
    stored = await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id)
    assert stored == "NOT_FAILED"


async def test_conditional_list_is_304_until_a_patch_then_200_on_every_worker(
    deployment, factory, owner, load
):
    """Each GET comes on a new connection, so both workers answer some: a worker whose change
    feed missed the PATCH would keep answering 304."""
    user_id, headers = owner
    print_id = await factory.print(user_id)
    path = "/api/v1/prints/?limit=10&sorting=date_desc"
    status, old_etag, _ = await fresh_get(deployment.base, path, headers)
    unchanged = {**headers, "If-None-Match": old_etag}
    before = [await fresh_get(deployment.base, path, unchanged) for _ in range(10)]

    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            f"{deployment.base}/api/v1/prints/{print_id}/",
            json={"alert_overwrite": "FAILED"},
            headers=headers,
        ) as response,
    ):
        await response.read()
    await first_status(deployment.base, path, unchanged, 200)
    await asyncio.sleep(0.1)
    after = [await fresh_get(deployment.base, path, unchanged) for _ in range(10)]

    assert status == 200
    assert [answer[:2] for answer in before] == [(304, old_etag)] * 10
    assert response.status == 200
    new_etag = after[0][1]
    assert new_etag != old_etag
    assert [answer[:2] for answer in after] == [(200, new_etag)] * 10
    assert [json.loads(answer[2])[0]["alert_overwrite"] for answer in after] == ["FAILED"] * 10


async def test_login_through_pgbouncer_gives_a_working_cookie(deployment, factory, owner, load):
    user_id, _ = owner
    print_id = await factory.print(user_id)

    # unsafe: the jar keeps the cookie of a server named by its address, 127.0.0.1.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=deployment.base, cookie_jar=jar) as session:
        credentials = {"email": "owner@example.com", "password": "correct horse"}
        async with session.post("/api/v1/auth/login/", json=credentials) as login:
            await login.read()
        async with session.get(f"/api/v1/prints/{print_id}/") as detail:
            body = await detail.json()

    assert login.status == 200
    assert detail.status == 200
    assert body["id"] == print_id


async def test_revoked_token_is_refused_by_every_worker(deployment, factory, owner, load):
    """The token is remembered by the workers first; only the announcement on the direct
    connection can make them forget it."""
    user_id, headers = owner
    print_id = await factory.print(user_id)
    path = f"/api/v1/prints/{print_id}/"
    before = [(await fresh_get(deployment.base, path, headers))[0] for _ in range(10)]

    revoked = deployment.cli.run("revoke-token", headers["Authorization"].removeprefix("Bearer "))
    await first_status(deployment.base, path, headers, 401)
    await asyncio.sleep(0.1)
    after = [(await fresh_get(deployment.base, path, headers))[0] for _ in range(10)]

    assert before == [200] * 10
    assert revoked.returncode == 0, revoked.stderr
    assert after == [401] * 10


async def test_workers_take_turns_on_two_server_connections(deployment, db, load):
    """The service holds 8 client connections; PostgreSQL sees 2 of PgBouncer's at most."""
    database = await db.fetchval("SELECT current_database()")
    counts = []
    for _ in range(20):
        counts.append(
            await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = $1 AND application_name = 'printapi'",
                database,
            )
        )
        await asyncio.sleep(0.05)
    clients = connections_to(deployment.pgbouncer.port, deployment.server)

    assert clients == [WORKER_POOL] * WORKERS
    assert max(counts) == SERVER_CONNECTIONS, counts


async def test_request_finding_every_server_connection_busy_answers_503(
    deployment, factory, owner
):
    """PgBouncer's query_wait_timeout (5 s) ends the wait; the next request is served."""
    user_id, headers = owner
    print_id = await factory.print(user_id)
    path = f"/api/v1/prints/{print_id}/"
    logged_before = len(output(deployment.server))
    holders = [
        await asyncpg.connect(deployment.pgbouncer.url(), statement_cache_size=0)
        for _ in range(SERVER_CONNECTIONS)
    ]
    try:
        for holder in holders:
            await holder.execute("BEGIN; SELECT 1")
        started = time.monotonic()
        status, _, body = await fresh_get(deployment.base, path, headers)
        waited = time.monotonic() - started
    finally:
        for holder in holders:
            await holder.close()
    after, _, _ = await fresh_get(deployment.base, path, headers)
    logged = output(deployment.server)[logged_before:]

    assert status == 503
    assert json.loads(body) == {"detail": UNREACHABLE}
    assert 5.0 <= waited < 7.0
    assert after == 200
    [trouble] = [line for line in logged.splitlines() if TROUBLE.search(line)]
    assert " WARNING service.middleware: database unavailable: " in trouble
    assert "query_wait_timeout" in trouble


# What the settings prevent.


async def test_serve_without_transaction_pooling_stops_naming_the_setting(deployment, tmp_path):
    cli = Cli(deployment.pgbouncer.url(), tmp_path)
    cli.extra_env["PRINTAPI_DIRECT_DATABASE_URL"] = deployment.cli.extra_env[
        "PRINTAPI_DIRECT_DATABASE_URL"
    ]

    result = cli.run("serve", "--port", "0")

    assert result.returncode == 1
    assert result.stderr == (
        "printapi serve: DATABASE_URL refused the pool's session settings (unsupported "
        "startup parameter: jit), as a transaction pooler such as PgBouncer does: set "
        "PRINTAPI_TRANSACTION_POOLING=true\n"
    )


async def test_command_through_pgbouncer_names_the_direct_url_setting(deployment, tmp_path):
    """A command's first statement is asyncpg's "__asyncpg_stmt_1__": with that name taken
    on both server connections, as other clients may leave it, the command says what to set.
    """
    planters = [
        await asyncpg.connect(deployment.pgbouncer.url(), statement_cache_size=0)
        for _ in range(SERVER_CONNECTIONS)
    ]
    try:
        for planter in planters:
            await planter.execute('BEGIN; PREPARE "__asyncpg_stmt_1__" AS SELECT 1')
        for planter in planters:
            await planter.execute("COMMIT")
    finally:
        for planter in planters:
            await planter.close()

    result = Cli(deployment.pgbouncer.url(), tmp_path).run("create-token", "owner@example.com")

    assert result.returncode == 1
    assert result.stderr == (
        "printapi create-token: the database connection is shared with other clients, as "
        "through a transaction pooler such as PgBouncer; set PRINTAPI_DIRECT_DATABASE_URL "
        "to PostgreSQL itself\n"
    )


@contextlib.asynccontextmanager
async def server_connections_swapped(connections):
    """Runs ``SELECT pg_backend_pid()`` on ``connections[0]``, then makes PgBouncer give its
    next statement the other of the 2 server connections: yields (first pid, other pid).

    Helpers 1 and 2 hold transactions open: 1 holds the other server connection while the
    statement runs, 2 then holds the one it ran on, and 1 lets the other go.
    """
    runner, holder, keeper = connections
    async with holder.transaction():
        other = await holder.fetchval("SELECT pg_backend_pid()")
        first = await runner.fetchval("SELECT pg_backend_pid()")
        keeper_transaction = keeper.transaction()
        await keeper_transaction.start()
        assert await keeper.fetchval("SELECT pg_backend_pid()") == first
    try:
        yield first, other
    finally:
        await keeper_transaction.rollback()


async def test_pool_for_transaction_pooling_runs_a_statement_on_another_server_connection(
    database_url,
):
    settings = Settings(database_url=database_url, transaction_pooling=True, pool_max_size=3)
    async with pgbouncer_running(database_url) as pgbouncer:
        pool = await create_pool(pgbouncer.url(), settings, StatementCounter())
        connections = [await pool.acquire() for _ in range(3)]
        try:
            async with server_connections_swapped(connections) as (first, other):
                again = await connections[0].fetchval("SELECT pg_backend_pid()")
        finally:
            for connection in connections:
                await pool.release(connection)
            await pool.close()

    assert first != other
    assert again == other


async def test_asyncpg_named_statement_is_lost_on_another_server_connection(database_url):
    """What the pool would meet with asyncpg's statement cache: its second run of a
    statement names one prepared on a server connection it no longer has."""
    async with pgbouncer_running(database_url) as pgbouncer:
        connections = [await asyncpg.connect(pgbouncer.url()) for _ in range(3)]
        try:
            async with server_connections_swapped(connections):
                with pytest.raises(asyncpg.InvalidSQLStatementNameError) as raised:
                    await connections[0].fetchval("SELECT pg_backend_pid()")
        finally:
            for connection in connections:
                await connection.close()

    first_line = str(raised.value).splitlines()[0]
    assert re.fullmatch(
        r'prepared statement "__asyncpg_stmt_[0-9a-f]+__" does not exist', first_line
    )


async def test_listen_through_pgbouncer_hears_nothing(database_url, db):
    """Why the change feed connects to PostgreSQL directly: a notification reaches only
    the server connection that listened, which PgBouncer lent to others meanwhile."""
    heard = {"direct": [], "pooled": []}
    async with pgbouncer_running(database_url) as pgbouncer:
        direct = await asyncpg.connect(database_url)
        pooled = await asyncpg.connect(pgbouncer.url(), statement_cache_size=0)
        try:
            await direct.add_listener("printapi_test", lambda *a: heard["direct"].append(a[3]))
            await pooled.add_listener("printapi_test", lambda *a: heard["pooled"].append(a[3]))
            await db.execute("SELECT pg_notify('printapi_test', 'hello')")
            await asyncio.sleep(1.0)
        finally:
            await direct.close()
            await pooled.close()

    assert heard == {"direct": ["hello"], "pooled": []}


# The session settings that PgBouncer must set.


async def _missing_settings(pgbouncer: PgBouncer, database_url: str) -> list[str]:
    settings = Settings(database_url=database_url, transaction_pooling=True)
    pool = await create_pool(pgbouncer.url(), settings, StatementCounter())
    try:
        return await pooler_settings_missing(pool, Queries(), settings)
    finally:
        await pool.close()


async def test_shipped_connect_query_sets_every_session_setting(deployment, database_url):
    assert await _missing_settings(deployment.pgbouncer, database_url) == []


async def settings_left_out(db) -> list[str]:
    """How the settings read without connect_query: the server's own values, which the
    fixture's connection, setting none of them, shows."""
    rows = await db.fetch(
        "SELECT name, setting FROM pg_settings WHERE name = ANY($1)", POOLER_SERVER_SETTINGS
    )
    own = dict(rows)
    return [
        f"jit is {own['jit']!r}, not 'off'",
        f"random_page_cost is {own['random_page_cost']!r}, not '1.1'",
        f"statement_timeout is {own['statement_timeout']!r}, not '30000'",
        f"lock_timeout is {own['lock_timeout']!r}, not '5000'",
    ]


async def test_settings_a_pooler_leaves_out_are_named(database_url, db):
    async with pgbouncer_running(database_url, connect_query=False) as pgbouncer:
        missing = await _missing_settings(pgbouncer, database_url)

    assert missing == await settings_left_out(db)


async def test_worker_warns_when_the_pooler_leaves_settings_out(
    aiohttp_client, database_url, db, tmp_path, caplog
):
    async with pgbouncer_running(database_url, connect_query=False) as pgbouncer:
        settings = Settings(
            database_url=pgbouncer.url(),
            direct_database_url=database_url,
            transaction_pooling=True,
            var_dir=tmp_path,
            secret_key=TEST_SECRET_KEY,
        )
        await aiohttp_client(create_app(settings))
        warnings = [r.getMessage() for r in caplog.records if r.name == "service.app"]

    assert warnings == [
        "the pooler's server connections lack session settings ("
        + "; ".join(await settings_left_out(db))
        + "); set them in its connect_query (deploy/pgbouncer.ini) or with ALTER ROLE ... SET"
    ]


# The direct path is left as it was.


async def test_direct_pool_keeps_statements_prepared_by_name(database_url):
    settings = Settings(database_url=database_url)
    pool = await create_pool(database_url, settings, StatementCounter())
    try:
        async with pool.acquire() as connection:
            await connection.fetchval("SELECT count(*) FROM prints")
            prepared = await connection.fetchval(
                "SELECT count(*) FROM pg_prepared_statements"
                " WHERE statement = 'SELECT count(*) FROM prints'"
            )
            timeout = await connection.fetchval("SELECT current_setting('statement_timeout')")
    finally:
        await pool.close()

    assert (prepared, timeout) == (1, "30s")
