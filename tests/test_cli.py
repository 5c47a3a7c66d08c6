"""The ``printapi`` command line, run as the real console script against real databases.

Most commands run against the session's test database, emptied before each test by the
``db`` fixture. Tests that need a database without the schema make their own on the same
server and drop it afterwards.
"""

import asyncio
import contextlib
import copy
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest
from yarl import URL

from service.auth import verify_password
from service.migrate import migrate, migration_files
from service.queries import Queries
from tests.conftest import admin

PRINTAPI = Path(sys.executable).parent / "printapi"
TABLES = ("users", "api_tokens", "printers", "prints", "print_shot_feedbacks")
TOKEN_LINE = re.compile(r"[0-9a-f]{40}\n")
#: Seconds a command may take; a server may take to answer, and to stop after SIGTERM.
COMMAND_TIMEOUT = 60
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0

#: Runs argv[3:] as systemd's socket activation would: fd argv[1] as fd 3, LISTEN_FDS argv[2].
ACTIVATE = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=sys.argv[2])
os.execv(sys.argv[3], sys.argv[3:])
"""

#: The example of API.md's import format, as written there.
EXAMPLE = {
    "users": [
        {
            "email": "owner@example.com",
            "password": "optional",
            "printers": [{"id": 7, "name": "MK4 left"}],
            "prints": [
                {
                    "id": 1201,
                    "printer": 7,
                    "filename": "benchy.gcode",
                    "started_at": "2026-03-01T12:00:00Z",
                    "finished_at": None,
                    "cancelled_at": "2026-03-01T13:10:00Z",
                    "deleted_at": None,
                    "alert_overwrite": None,
                    "printshotfeedback_set": [
                        {
                            "id": 88,
                            "image_url": "https://example.com/f/88.jpg",
                            "answer": None,
                            "answered_at": None,
                        }
                    ],
                }
            ],
        }
    ]
}


class Cli:
    """Runs the console script with DATABASE_URL set, and var/ kept in the test's tmp dir."""

    def __init__(self, database_url: str, var_dir: Path) -> None:
        self.database_url = database_url
        self.var_dir = var_dir
        self.extra_env: dict[str, str] = {}

    def env(self, database_url: str | None) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": database_url or self.database_url,
            "PRINTAPI_VAR_DIR": str(self.var_dir),
            **self.extra_env,
        }

    def run(
        self, *args: str, stdin: str | bytes | None = None, database_url: str | None = None
    ) -> subprocess.CompletedProcess:
        """Runs a command to its end; stdin may be bytes, and the output is text either way."""
        result = subprocess.run(
            [str(PRINTAPI), *args],
            input=stdin.encode("utf-8") if isinstance(stdin, str) else stdin,
            capture_output=True,
            env=self.env(database_url),
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        result.stdout = result.stdout.decode("utf-8", "backslashreplace")
        result.stderr = result.stderr.decode("utf-8", "backslashreplace")
        return result

    def run_on_terminal(self, *args: str, output: Path | None = None) -> tuple[int, str]:
        """Runs a command with standard error on a terminal 100 columns wide, and standard
        output on it too unless ``output`` names a file; the exit status, and what showed.
        """
        controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(os.close, controller)
            stdout = cleanup.enter_context(open(output, "wb")) if output else terminal
            process = subprocess.Popen(
                [str(PRINTAPI), *args],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=terminal,
                env=self.env(None),
            )
            os.close(terminal)
            shown = bytearray()
            deadline = time.monotonic() + COMMAND_TIMEOUT
            while time.monotonic() < deadline:
                if select.select([controller], [], [], 1)[0]:
                    try:
                        chunk = os.read(controller, 65536)
                    except OSError:  # EIO: the command and its children closed the terminal.
                        break
                    if not chunk:
                        break
                    shown += chunk
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            return process.wait(timeout=STOP_TIMEOUT), shown.decode("utf-8", "backslashreplace")

    def start(
        self,
        *args: str,
        database_url: str | None = None,
        passed: socket.socket | None = None,
        passed_count: int = 1,
    ) -> subprocess.Popen:
        """Starts a long-running command in its own process group, output to a log file.

        With ``passed``, the command gets that socket as systemd's socket activation gives
        it: as file descriptor 3, with LISTEN_PID naming the command and LISTEN_FDS set to
        ``passed_count``.
        """
        log = open(self.var_dir / f"printapi-{uuid.uuid4().hex[:8]}.log", "w+")  # noqa: SIM115
        command = [str(PRINTAPI), *args]
        if passed is not None:
            command = [sys.executable, "-c", ACTIVATE, str(passed.fileno()), str(passed_count)]
            command += [str(PRINTAPI), *args]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(database_url),
            start_new_session=True,
            pass_fds=(passed.fileno(),) if passed is not None else (),
        )
        process.log = log
        return process


class EmbeddedCli(Cli):
    """Runs the console script with DATABASE_URL unset: on an embedded PostgreSQL in var_dir.

    XDG_RUNTIME_DIR is unset too, as on a server without a login session, and only warnings
    are logged, so that standard error holds nothing on success.
    """

    def env(self, database_url: str | None) -> dict[str, str]:
        unset = ("DATABASE_URL", "XDG_RUNTIME_DIR")
        return {
            **{name: value for name, value in os.environ.items() if name not in unset},
            "PRINTAPI_VAR_DIR": str(self.var_dir),
            "PRINTAPI_LOG_LEVEL": "WARNING",
        }


def output(process: subprocess.Popen) -> str:
    process.log.seek(0)
    return process.log.read()


@pytest.fixture
def printapi(database_url, tmp_path) -> Cli:
    return Cli(database_url, tmp_path)


@pytest.fixture
def embedded_printapi():
    """An EmbeddedCli on a var/ of its own; a server it leaves running is stopped by its pid.

    The directory is a short one under /tmp, not tmp_path: the server's unix socket lives in
    it, and a socket path may not be much longer than 100 bytes.
    """
    var_dir = Path(tempfile.mkdtemp(prefix="printapi-"))
    yield EmbeddedCli("", var_dir)
    postmaster = var_dir / "pgdata" / "postmaster.pid"
    if postmaster.exists():
        pid = int(postmaster.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown.
        deadline = time.monotonic() + STOP_TIMEOUT
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    shutil.rmtree(var_dir)


@pytest.fixture
async def empty_database_url(server_url):
    """A database with no schema, made on the test server for one test and dropped after."""
    name = f"printapi_cli_{uuid.uuid4().hex[:12]}"
    await admin(server_url, f'CREATE DATABASE "{name}"')
    server = URL(server_url)
    yield str(server.with_path(f"/{name}").with_query(server.query))
    await admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def other_database_url(empty_database_url):
    """A second migrated database, empty, for an import that must land somewhere else."""
    connection = await asyncpg.connect(empty_database_url)
    try:
        await migrate(connection, Queries())
    finally:
        await connection.close()
    return empty_database_url


async def count_rows(connection: asyncpg.Connection) -> dict[str, int]:
    return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}


def write_json(directory: Path, document) -> str:
    path = directory / f"document-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def example(**print_fields) -> dict:
    """API.md's example document, with fields of its one print changed."""
    document = copy.deepcopy(EXAMPLE)
    document["users"][0]["prints"][0].update(print_fields)
    return document


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    """The ids of the processes that process ``pid`` forked and that still run.

    Read from every process's parent id (psutil): /proc/PID/task/PID/children is reliable
    only while the children are stopped, and missed a running worker now and then.
    """
    return sorted(child.pid for child in psutil.Process(pid).children())


def stop(process: subprocess.Popen) -> int:
    """Sends SIGTERM to the process by its id; its exit code, once it has exited."""
    os.kill(process.pid, signal.SIGTERM)
    return process.wait(timeout=STOP_TIMEOUT)


def terminate(process: subprocess.Popen) -> None:
    """Ends a process started in its own group: SIGTERM by its id, then its group killed if
    it has not exited within STOP_TIMEOUT."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running(process: subprocess.Popen):
    """Makes sure the process and the workers it forked are gone when the block is left."""
    try:
        yield process
    finally:
        terminate(process)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # Workers left behind by a failed parent.
        process.log.close()


async def wait_until_answering(process, session: aiohttp.ClientSession, url: str) -> None:
    """Polls ``url`` until the server answers anything, for at most START_TIMEOUT seconds."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{output(process)}")
        try:
            async with session.get(url) as response:
                await response.read()
                return
        except (aiohttp.ClientConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer in {START_TIMEOUT} s:\n{output(process)}")
            await asyncio.sleep(0.1)


# migrate


async def test_migrate_twice_says_up_to_date_the_second_time(printapi, empty_database_url):
    names = [path.stem for path in migration_files()]

    first = printapi.run("migrate", database_url=empty_database_url)
    second = printapi.run("migrate", database_url=empty_database_url)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stdout == "applied: " + ", ".join(names) + "\n"
    assert second.stdout == "migrations are up to date\n"


async def test_two_migrate_processes_at_once_apply_each_migration_once(
    printapi, empty_database_url
):
    names = [path.stem for path in migration_files()]
    env = printapi.env(empty_database_url)
    processes = [
        subprocess.Popen(
            [str(PRINTAPI), "migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    results = []
    for process in processes:
        try:
            results.append((*process.communicate(timeout=COMMAND_TIMEOUT), process.returncode))
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    for _, stderr, code in results:
        assert code == 0, stderr
    assert sorted(stdout for stdout, _, _ in results) == [
        "applied: " + ", ".join(names) + "\n",
        "migrations are up to date\n",
    ]
    connection = await asyncpg.connect(empty_database_url)
    try:
        rows = await connection.fetch(
            "SELECT version, count(*) AS n FROM schema_migrations GROUP BY version"
        )
    finally:
        await connection.close()
    assert {row["version"]: row["n"] for row in rows} == dict.fromkeys(names, 1)


#: Every command but migrate and serve: its arguments and standard input.
COMMANDS = {
    "create-user": (("create-user", "new@example.com"), "long enough secret\n"),
    "create-token": (("create-token", "owner@example.com"), None),
    "revoke-token": (("revoke-token", "0" * 40), None),
    "import": (("import", "-"), json.dumps(EXAMPLE)),
    "export": (("export",), None),
    "seed-demo": (("seed-demo",), None),
}


async def public_tables(database_url: str) -> list[str]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await connection.close()
    return [row["table_name"] for row in rows]


@pytest.mark.parametrize("command", list(COMMANDS))
async def test_command_on_database_never_migrated_exits_1_saying_to_migrate(
    printapi, empty_database_url, command
):
    args, stdin = COMMANDS[command]
    names = ", ".join(path.stem for path in migration_files())

    result = printapi.run(*args, stdin=stdin, database_url=empty_database_url)

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"printapi {command}: migrations not applied: {names}; run: printapi migrate\n"
    )
    assert await public_tables(empty_database_url) == []


async def test_command_on_database_with_a_migration_pending_exits_1_naming_it(
    printapi, empty_database_url, tmp_path
):
    first, *rest = migration_files()
    directory = tmp_path / "migrations"
    directory.mkdir()
    shutil.copy(first, directory)
    connection = await asyncpg.connect(empty_database_url)
    try:
        await migrate(connection, Queries(), directory)
    finally:
        await connection.close()

    result = printapi.run("export", database_url=empty_database_url)

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"printapi export: migrations not applied: {', '.join(path.stem for path in rest)}; "
        "run: printapi migrate\n"
    )


# create-user, create-token, revoke-token


async def test_create_user_takes_password_from_stdin(printapi, db):
    result = printapi.run("create-user", "new@example.com", stdin="long enough secret\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    row = await db.fetchrow("SELECT id, email, password_hash FROM users")
    assert result.stderr == f"created user {row['id']} (new@example.com)\n"
    assert row["email"] == "new@example.com"
    assert verify_password(row["password_hash"], "long enough secret")


async def test_create_user_with_existing_email_in_other_case_exits_1(printapi, db, factory):
    await factory.user("taken@example.com")

    result = printapi.run("create-user", "TAKEN@Example.com", stdin="long enough secret\n")

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "printapi create-user: a user with the email TAKEN@Example.com exists already\n"
    )
    assert await db.fetchval("SELECT count(*) FROM users") == 1


async def test_create_user_with_short_password_exits_1(printapi, db):
    result = printapi.run("create-user", "new@example.com", stdin="short\n")

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "printapi create-user: the password must have at least 8 characters\n"
    )
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_create_user_with_malformed_email_exits_1(printapi, db):
    result = printapi.run("create-user", "not-an-email", stdin="long enough secret\n")

    assert result.returncode == 1, result.stderr
    assert result.stderr == "printapi create-user: 'not-an-email' is not an email address\n"
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_create_user_with_email_ending_in_newline_exits_1(printapi, db):
    result = printapi.run("create-user", "new@example.com\n", stdin="long enough secret\n")

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "printapi create-user: 'new@example.com\\n' is not an email address\n"
    )
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_create_user_with_email_not_utf8_exits_1(printapi, db):
    # Python hands the byte 0xff of an argument over as the surrogate \udcff, and back.
    result = printapi.run("create-user", "\udcff@example.com", stdin="long enough secret\n")

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "printapi create-user: the email '\\udcff@example.com' is not valid UTF-8\n"
    )
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_create_user_with_password_not_utf8_exits_1(printapi, db):
    result = printapi.run("create-user", "new@example.com", stdin=b"long enough \xff secret\n")

    assert result.returncode == 1, result.stderr
    assert result.stderr == "printapi create-user: the password is not valid UTF-8\n"
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_create_token_prints_one_token_line_that_authenticates(printapi, client, factory):
    user_id = await factory.user("owner@example.com")
    print_id = await factory.print(user_id)

    result = printapi.run("create-token", "OWNER@example.com")

    assert result.returncode == 0, result.stderr
    assert TOKEN_LINE.fullmatch(result.stdout), result.stdout

    token = result.stdout.strip()
    response = await client.get("/api/v1/prints/", headers={"Authorization": f"Bearer {token}"})

    assert response.status == 200, await response.text()
    assert [item["id"] for item in await response.json()] == [print_id]


async def test_create_token_for_unknown_email_exits_1(printapi, db):
    result = printapi.run("create-token", "nobody@example.com")

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == "printapi create-token: no user has the email nobody@example.com\n"
    assert await db.fetchval("SELECT count(*) FROM api_tokens") == 0


async def test_create_token_with_email_not_utf8_exits_1(printapi, db):
    result = printapi.run("create-token", "\udcff@example.com")

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "printapi create-token: the email '\\udcff@example.com' is not valid UTF-8\n"
    )


async def test_revoke_token_makes_it_answer_401(printapi, client, db, owner):
    _, headers = owner
    token = headers["Authorization"].split()[1]

    result = printapi.run("revoke-token", token)

    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("revoked (since ")
    assert await db.fetchval("SELECT revoked_at IS NOT NULL FROM api_tokens") is True

    response = await client.get("/api/v1/prints/", headers=headers)

    assert response.status == 401, await response.text()


async def test_revoke_token_read_from_stdin_makes_it_answer_401(printapi, client, db, owner):
    _, headers = owner
    token = headers["Authorization"].split()[1]

    result = printapi.run("revoke-token", "-", stdin=f"{token}\n")

    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("revoked (since ")
    response = await client.get("/api/v1/prints/", headers=headers)
    assert response.status == 401, await response.text()


async def test_revoke_token_with_empty_stdin_exits_1_and_revokes_nothing(printapi, db, owner):
    result = printapi.run("revoke-token", "-", stdin="")

    assert result.returncode == 1, result.stderr
    assert result.stderr == "printapi revoke-token: no token on standard input\n"
    assert await db.fetchval("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL") == 1


async def test_revoke_unknown_token_exits_1(printapi, db, owner):
    result = printapi.run("revoke-token", "0" * 40)

    assert result.returncode == 1, result.stderr
    assert result.stderr == "printapi revoke-token: no such token\n"
    assert await db.fetchval("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL") == 1


# the command line itself


async def test_command_line_argparse_cannot_read_prints_usage_and_one_error_line_exit_2(
    printapi,
):
    result = printapi.run("serve", "--port", "eighty")

    assert result.returncode == 2
    assert result.stderr.startswith("usage: printapi serve [-h] ")
    assert result.stderr.endswith(
        "\nprintapi serve: error: argument --port: invalid int value: 'eighty'\n"
    )
    assert result.stdout == ""


# settings


@pytest.mark.parametrize(
    ("command", "variable", "value", "message"),
    [
        (
            ("migrate",),
            "DATABASE_URL",
            "mysql://printapi@db.internal/printapi",
            "DATABASE_URL must be a postgresql:// or postgres:// URL, not a mysql:// URL",
        ),
        (
            ("serve", "--port", "0"),
            "PRINTAPI_STATEMENT_TIMEOUT",
            "nan",
            "PRINTAPI_STATEMENT_TIMEOUT must be a finite number of seconds, not 'nan'",
        ),
        (
            ("export",),
            "PRINTAPI_POOL_MIN_SIZE",
            "20",
            "PRINTAPI_POOL_MIN_SIZE must be at most PRINTAPI_POOL_MAX_SIZE (10), not 20",
        ),
        (
            ("create-user", "owner@example.com"),
            "PRINTAPI_TRUSTED_ORIGINS",
            "https://app.example/dashboard",
            "PRINTAPI_TRUSTED_ORIGINS must list origins, scheme://host[:port] with no path, "
            "not 'https://app.example/dashboard'",
        ),
    ],
)
async def test_command_with_a_bad_setting_exits_1_with_one_line_naming_it(
    printapi, command, variable, value, message
):
    printapi.extra_env[variable] = value

    result = printapi.run(*command)

    assert result.returncode == 1
    assert result.stderr == f"printapi {command[0]}: {message}\n"
    assert result.stdout == ""


# import


async def test_import_keeps_ids_and_api_shows_them(printapi, client, db, factory, tmp_path):
    result = printapi.run("import", write_json(tmp_path, EXAMPLE))

    assert result.returncode == 0, result.stderr
    assert result.stderr == "imported 1 users, 1 printers, 1 prints, 1 feedbacks\n"

    user_id = await db.fetchval("SELECT id FROM users WHERE email = 'owner@example.com'")
    token = await factory.token(user_id)
    response = await client.get("/api/v1/prints/", headers={"Authorization": f"Bearer {token}"})

    assert response.status == 200, await response.text()
    assert await response.json() == [
        {
            "id": 1201,
            "printer": 7,
            "filename": "benchy.gcode",
            "started_at": "2026-03-01T12:00:00.000000Z",
            "finished_at": None,
            "cancelled_at": "2026-03-01T13:10:00.000000Z",
            "uploaded_at": None,
            "alerted_at": None,
            "alert_acknowledged_at": None,
            "alert_muted_at": None,
            "paused_at": None,
            "video_url": None,
            "tagged_video_url": None,
            "poster_url": None,
            "prediction_json_url": None,
            "alert_overwrite": None,
            "printshotfeedback_set": [
                {
                    "id": 88,
                    "print_id": 1201,
                    "image_url": "https://example.com/f/88.jpg",
                    "answer": None,
                    "answered_at": None,
                }
            ],
        }
    ]
    printers = await db.fetch("SELECT id, user_id, name FROM printers")
    assert [tuple(row) for row in printers] == [(7, user_id, "MK4 left")]


async def test_imported_user_logs_in_with_imported_password(printapi, client, db, tmp_path):
    result = printapi.run("import", write_json(tmp_path, EXAMPLE))

    assert result.returncode == 0, result.stderr

    response = await client.post(
        "/api/v1/auth/login/", json={"email": "owner@example.com", "password": "optional"}
    )

    assert response.status == 200, await response.text()


async def test_import_whose_last_print_id_exists_exits_1_and_writes_nothing(
    printapi, db, factory, tmp_path
):
    existing = await factory.print(await factory.user("other@example.com"))
    document = copy.deepcopy(EXAMPLE)
    first = document["users"][0]["prints"][0]
    document["users"][0]["prints"] += [
        {**first, "id": 1202, "printshotfeedback_set": []},
        {**first, "id": existing, "printshotfeedback_set": []},
    ]
    document["users"].append({"email": "second@example.com", "password": "long enough"})
    before = await count_rows(db)

    result = printapi.run("import", write_json(tmp_path, document))

    assert result.returncode == 1, result.stderr
    assert result.stderr == f"printapi import: already in the database: print {existing}\n"
    assert await count_rows(db) == before


async def test_import_print_naming_printer_of_other_user_in_document_exits_1(
    printapi, db, tmp_path
):
    document = copy.deepcopy(EXAMPLE)
    document["users"].append(
        {
            "email": "second@example.com",
            "prints": [{"id": 1300, "printer": 7, "filename": "clip.gcode"}],
        }
    )

    result = printapi.run("import", write_json(tmp_path, document))

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "printapi import: users[1].prints[0] (print 1300): "
        "printer 7 is not a printer of second@example.com\n"
    )
    assert await count_rows(db) == dict.fromkeys(TABLES, 0)


async def test_import_print_naming_printer_of_user_in_database_exits_1(
    printapi, db, factory, tmp_path
):
    printer_id = await factory.printer(await factory.user("other@example.com"))
    before = await count_rows(db)

    result = printapi.run("import", write_json(tmp_path, example(printer=printer_id)))

    assert result.returncode == 1, result.stderr
    assert f"printer {printer_id} is not a printer of owner@example.com" in result.stderr
    assert await count_rows(db) == before


@pytest.mark.parametrize("value", ["2026-03-01 noon", "2026-03-01T12:00:00"])
async def test_import_with_malformed_timestamp_exits_1_naming_field(printapi, db, tmp_path, value):
    result = printapi.run("import", write_json(tmp_path, example(finished_at=value)))

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "printapi import: users[0].prints[0] (print 1201).finished_at: "
        f"must be an RFC 3339 timestamp with a zone, not {value!r}\n"
    )
    assert await count_rows(db) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            json.dumps(EXAMPLE).replace('"id": 1201,', '"id": 1201, "id": 1202,'),
            'the name "id" is given twice in one object',
            id="name-twice",
        ),
        pytest.param(
            json.dumps(example(id=float("nan"))),
            "NaN is not JSON",
            id="nan",
        ),
        pytest.param(
            json.dumps(example(id=float("inf"))),
            "Infinity is not JSON",
            id="infinity",
        ),
    ],
)
async def test_import_of_text_that_is_not_strict_json_exits_1_naming_the_problem(
    printapi, db, text, problem
):
    result = printapi.run("import", "-", stdin=text)

    assert result.returncode == 1, result.stderr
    assert result.stderr == f"printapi import: - is not valid JSON: {problem}\n"
    assert await count_rows(db) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize(
    ("encoding", "problem"),
    [
        ("utf-8-sig", "it begins with a byte order mark"),
        ("utf-16", "it holds a NUL byte, as UTF-16 and UTF-32 text do"),
        ("latin-1", "byte 61 is not UTF-8"),
    ],
)
async def test_import_of_a_file_not_in_utf8_exits_1_naming_the_problem(
    printapi, db, tmp_path, encoding, problem
):
    path = tmp_path / "document.json"
    path.write_bytes(
        json.dumps(EXAMPLE, ensure_ascii=False).replace("optional", "optionél").encode(encoding)
    )

    result = printapi.run("import", str(path))

    assert result.returncode == 1, result.stderr
    assert result.stderr == f"printapi import: {path} is not valid JSON: {problem}\n"
    assert await count_rows(db) == dict.fromkeys(TABLES, 0)


async def test_rows_created_after_import_get_ids_above_imported_ones(
    printapi, db, factory, tmp_path
):
    result = printapi.run("import", write_json(tmp_path, EXAMPLE))

    assert result.returncode == 0, result.stderr

    imported_user = await db.fetchval("SELECT id FROM users")
    user_id = await factory.user("new@example.com")
    printer_id = await factory.printer(user_id)
    print_id = await factory.print(user_id)
    feedback_id = await factory.feedback(print_id)

    assert user_id > imported_user
    assert (printer_id, print_id, feedback_id) == (8, 1202, 89)


# export


ROUND_TRIP = {
    "users": [
        {
            "email": "maker@example.com",
            "password": "maker password",
            "printers": [{"id": 3, "name": "Voron"}, {"id": 9, "name": "Bambu X1C"}],
            "prints": [
                {
                    "id": 40,
                    "printer": 9,
                    "filename": "gear.gcode",
                    "started_at": "2026-01-05T08:00:00.125000Z",
                    "finished_at": "2026-01-05T10:30:00+00:00",
                    "uploaded_at": "2026-01-05T10:32:00Z",
                    "alerted_at": "2026-01-05T09:00:00Z",
                    "alert_acknowledged_at": "2026-01-05T09:03:00Z",
                    "alert_muted_at": "2026-01-05T09:05:00Z",
                    "paused_at": "2026-01-05T09:00:30+01:00",
                    "video_url": "https://media.example.com/40/video.mp4",
                    "tagged_video_url": "https://media.example.com/40/tagged.mp4",
                    "poster_url": "https://media.example.com/40/poster.jpg",
                    "prediction_json_url": "https://media.example.com/40/p.json",
                    "alert_overwrite": "NOT_FAILED",
                    "printshotfeedback_set": [
                        {
                            "id": 500,
                            "image_url": "https://media.example.com/40/1.jpg",
                            "answer": "LOOKS_OK",
                            "answered_at": "2026-01-06T07:00:00Z",
                        },
                        {"id": 501, "image_url": "https://media.example.com/40/2.jpg"},
                    ],
                },
                {
                    "id": 41,
                    "printer": 3,
                    "filename": "deleted.gcode",
                    "started_at": "2026-01-07T08:00:00Z",
                    "cancelled_at": "2026-01-07T08:10:00Z",
                    "deleted_at": "2026-01-08T00:00:00Z",
                },
                {"id": 42, "filename": "never started.gcode"},
            ],
        },
        {"email": "Viewer@Example.com", "printers": [], "prints": []},
    ]
}


def final_lines(shown: str) -> list[str]:
    """What a terminal shows at the end: each line as its last carriage return left it."""
    return [line.rsplit("\r", 1)[-1] for line in shown.split("\r\n") if line]


async def test_import_on_a_terminal_shows_reading_checking_and_writing_to_the_end(
    printapi, db, tmp_path
):
    path = write_json(tmp_path, ROUND_TRIP)

    status, shown = printapi.run_on_terminal("import", path)

    assert status == 0, shown
    reading, checking, writing, summary = final_lines(shown)
    assert reading.startswith("reading: 100%|"), reading
    assert checking.startswith("checking: 100%|") and "| 3/3 [" in checking, checking
    assert writing.startswith("writing: 100%|") and "| 9/9 [" in writing, writing
    assert summary == "imported 2 users, 2 printers, 3 prints, 2 feedbacks"


async def test_export_to_a_file_shows_its_progress_on_the_terminal(printapi, db, tmp_path):
    printapi.run("import", write_json(tmp_path, ROUND_TRIP))
    output = tmp_path / "export.json"

    status, shown = printapi.run_on_terminal("export", output=output)

    assert status == 0, shown
    [exporting] = final_lines(shown)
    assert exporting.startswith("exporting: 100%|") and "| 3/3 [" in exporting, exporting
    assert output.read_text() == printapi.run("export").stdout


async def test_export_to_the_terminal_draws_no_progress_into_the_json(printapi, db, tmp_path):
    printapi.run("import", write_json(tmp_path, ROUND_TRIP))

    status, shown = printapi.run_on_terminal("export")

    assert status == 0, shown
    assert shown == printapi.run("export").stdout.replace("\n", "\r\n")


async def test_export_not_on_a_terminal_writes_nothing_to_stderr(printapi, db, tmp_path):
    printapi.run("import", write_json(tmp_path, ROUND_TRIP))

    result = printapi.run("export")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


async def test_export_imported_elsewhere_exports_identical_json(
    printapi, db, other_database_url, tmp_path
):
    imported = printapi.run("import", write_json(tmp_path, ROUND_TRIP))
    first = printapi.run("export")

    assert imported.returncode == 0, imported.stderr
    assert first.returncode == 0, first.stderr
    exported = json.loads(first.stdout)
    deleted = exported["users"][0]["prints"][1]
    assert (deleted["id"], deleted["deleted_at"]) == (41, "2026-01-08T00:00:00.000000Z")

    again = printapi.run("import", write_json(tmp_path, exported), database_url=other_database_url)
    second = printapi.run("export", database_url=other_database_url)

    assert again.returncode == 0, again.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout


async def test_export_into_pipe_its_reader_closed_exits_141_quietly(printapi, db, factory):
    await db.execute(
        "INSERT INTO prints (user_id, filename)"
        " SELECT $1, 'part_' || n || '.gcode' FROM generate_series(1, 5000) AS n",
        await factory.user("owner@example.com"),
    )
    process = subprocess.Popen(
        [str(PRINTAPI), "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=printapi.env(None),
    )
    try:
        head = process.stdout.read(50)
        process.stdout.close()  # As `printapi export | head -c 50` does, megabytes early.
        code = process.wait(timeout=COMMAND_TIMEOUT)
        stderr = process.stderr.read().decode("utf-8", "backslashreplace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()

    assert head == b'{"users":[{"email":"owner@example.com","password_h'
    assert code == 141, stderr
    assert stderr == ""


async def test_export_to_full_disk_exits_1_saying_so(printapi, db, factory):
    await factory.print(await factory.user())

    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [str(PRINTAPI), "export"],
            stdout=full,
            stderr=subprocess.PIPE,
            env=printapi.env(None),
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    stderr = result.stderr.decode("utf-8", "backslashreplace")
    assert result.returncode == 1, stderr
    assert stderr == "printapi export: cannot write to standard output: No space left on device\n"


# seed-demo


async def test_seed_demo_on_empty_database_prints_token_for_long_history(printapi, client, db):
    result = printapi.run("seed-demo")

    assert result.returncode == 0, result.stderr
    assert TOKEN_LINE.fullmatch(result.stdout), result.stdout

    token = result.stdout.strip()
    response = await client.get("/api/v1/prints/", headers={"Authorization": f"Bearer {token}"})

    assert response.status == 200, await response.text()
    assert len(await response.json()) > 1000
    printers = await db.fetchval(
        "SELECT count(*) FROM printers AS p JOIN users AS u ON u.id = p.user_id"
        " WHERE u.email = 'demo@example.com'"
    )
    assert printers > 1


async def test_seed_demo_on_non_empty_database_exits_1_and_changes_nothing(printapi, db, factory):
    await factory.print(await factory.user())
    before = await count_rows(db)

    result = printapi.run("seed-demo")

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "printapi seed-demo: the database is not empty; seed-demo only fills an empty one\n"
    )
    assert await count_rows(db) == before


# serve


async def test_serve_on_tcp_answers_then_stops_on_sigterm(printapi, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"

    with running(printapi.start("serve", "--host", "127.0.0.1", "--port", str(port))) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
            async with session.get(base, headers=headers) as response:
                status, body = response.status, await response.text()

        assert status == 200, body
        assert [item["id"] for item in json.loads(body)] == [print_id]

        assert stop(server) == 0, output(server)


def established(pid: int, port: int) -> int:
    """How many connections to ``port`` the process ``pid`` holds open."""
    return sum(
        1
        for connection in psutil.Process(pid).net_connections("tcp")
        if connection.laddr.port == port and connection.status == "ESTABLISHED"
    )


async def spread_of_a_client_pool(url: str, port: int, workers: list[int]):
    """The answers to 640 requests from a pool of 32 keep-alive connections, opened as the
    requests pile up, as a proxy's or a load generator's pool is; and how many of those
    connections each worker holds."""
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def ask() -> int:
            async with session.get(url) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(ask() for _ in range(640)))
        return statuses, {pid: established(pid, port) for pid in workers}


@contextlib.asynccontextmanager
async def two_workers(printapi):
    """``printapi serve --workers 2`` on a free port of 127.0.0.1, answering: (the parent
    process, the port, the URL of /healthz). Stopped by its pid when the block is left."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, url)
        yield server, port, url


async def test_serve_spreads_connections_opened_under_load_over_its_workers(printapi):
    async with two_workers(printapi) as (server, port, url):
        statuses, held = await spread_of_a_client_pool(url, port, children(server.pid))

    assert statuses == [200] * 640
    assert sum(held.values()) == 32
    assert min(held.values()) >= 8, held


async def test_a_replaced_worker_takes_its_share_of_connections(printapi):
    async with two_workers(printapi) as (server, port, url):
        killed = children(server.pid)[0]
        os.kill(killed, signal.SIGKILL)
        workers = await wait_for_workers(server, 2, gone={killed})
        replacement = max(workers, key=lambda pid: psutil.Process(pid).create_time())
        # Until its loop runs, the replacement takes nothing: ask on new connections until
        # one lands on it (10 s at most).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.wait_for(reader.readline(), 10)
            landed = established(replacement, port)
            writer.close()
            await writer.wait_closed()
            if landed:
                break
            await asyncio.sleep(0.05)

        statuses, held = await spread_of_a_client_pool(url, port, workers)

    assert statuses == [200] * 640
    assert sum(held.values()) == 32
    assert min(held.values()) >= 8, held


async def test_a_stopped_worker_does_not_slow_the_other_taking_new_connections(printapi):
    async with two_workers(printapi) as (server, _, url):
        stopped, _ = children(server.pid)
        os.kill(stopped, signal.SIGSTOP)
        try:
            # Eight held connections put the other worker well above the stopped one's
            # count, which never changes; then 200 requests each on a new connection.
            async with aiohttp.ClientSession() as held:
                await asyncio.gather(*(held.get(url) for _ in range(8)))
                connector = aiohttp.TCPConnector(force_close=True)
                async with aiohttp.ClientSession(connector=connector) as fresh:
                    began = time.monotonic()
                    for _ in range(200):
                        async with fresh.get(url) as response:
                            assert response.status == 200
                    seconds = time.monotonic() - began
        finally:
            os.kill(stopped, signal.SIGCONT)

    # Waiting DEFER_LIMIT (20 ms) for the stopped worker before each would take 4 s or
    # more; a request on a new connection takes a few milliseconds here.
    assert seconds < 2.5, seconds


async def test_serve_on_unix_socket_answers_then_stops_on_sigterm(printapi, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    with (
        tempfile.TemporaryDirectory(prefix="printapi-") as directory,
        running(printapi.start("serve", "--unix", f"{directory}/api.sock")) as server,
    ):
        connector = aiohttp.UnixConnector(path=f"{directory}/api.sock")
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_until_answering(server, session, "http://localhost/api/v1/prints/")
            async with session.get("http://localhost/api/v1/prints/", headers=headers) as response:
                status, body = response.status, await response.text()

        assert status == 200, body
        assert [item["id"] for item in json.loads(body)] == [print_id]

        assert stop(server) == 0, output(server)


async def test_serve_with_two_workers_answers_then_stops_on_sigterm(printapi, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)

            async def fetch():
                async with aiohttp.ClientSession() as fresh, fresh.get(base, headers=headers) as r:
                    return r.status, await r.text()

            answers = await asyncio.gather(*(fetch() for _ in range(8)))

        assert [status for status, _ in answers] == [200] * 8, answers
        assert {body for _, body in answers} == {answers[0][1]}
        assert [item["id"] for item in json.loads(answers[0][1])] == [print_id]
        workers = children(server.pid)
        assert len(workers) == 2, (workers, output(server))

        assert stop(server) == 0, output(server)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


async def wait_for_workers(server, count: int, gone: set[int] = frozenset()) -> list[int]:
    """Polls until the server has ``count`` workers, none of them in ``gone``; their pids."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        workers = children(server.pid)
        if len(workers) == count and not gone & set(workers):
            return workers
        await asyncio.sleep(0.1)
    pytest.fail(f"no {count} new workers in {START_TIMEOUT} s:\n{output(server)}")


async def test_serve_replaces_a_worker_that_dies(printapi, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
            first, second = await wait_for_workers(server, 2)
            os.kill(first, signal.SIGKILL)
            workers = await wait_for_workers(server, 2, gone={first})

            statuses = []
            for _ in range(8):
                async with aiohttp.ClientSession() as fresh, fresh.get(base, headers=headers) as r:
                    statuses.append(r.status)

        assert second in workers
        assert statuses == [200] * 8
        assert f"worker {first} exited with signal SIGKILL after " in output(server)
        assert stop(server) == 0, output(server)


async def test_serve_gives_up_when_workers_keep_dying_at_start(printapi):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
        killed: set[int] = set()
        deadline = time.monotonic() + 30
        while server.poll() is None and time.monotonic() < deadline:
            for pid in set(children(server.pid)) - killed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.05)

        assert server.wait(timeout=STOP_TIMEOUT) == 1, output(server)
        assert output(server).count(" exited with signal SIGKILL after ") == 5, output(server)
        assert output(server).endswith(
            "printapi serve: workers failed 5 times in a row within 5 s of starting; "
            "the log says why\n"
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # The parent closed the listening socket.


async def test_serve_kills_a_worker_that_does_not_stop_in_time(printapi):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    printapi.extra_env["PRINTAPI_SHUTDOWN_TIMEOUT"] = "0.5"

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
        hung, other = await wait_for_workers(server, 2)
        os.kill(hung, signal.SIGSTOP)
        started = time.monotonic()

        status = stop(server)

        took = time.monotonic() - started
        assert status == 1, output(server)
        assert 3.0 <= took < 3.0 + STOP_TIMEOUT / 2, took
        assert f"worker {hung} did not stop within 3 s; killing it" in output(server)
        assert output(server).endswith("printapi serve: 1 of 2 workers exited with an error\n")
        assert not Path(f"/proc/{hung}").exists() and not Path(f"/proc/{other}").exists()


async def wait_for_lock_waits(db, count: int) -> None:
    """Polls until ``count`` statements of the test database wait for a lock (10 s at most)."""
    deadline = time.monotonic() + 10
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while await db.fetchval(query) != count:
        assert time.monotonic() < deadline, "no statement came to wait for the lock"
        await asyncio.sleep(0.05)


async def refused(port: int) -> bool:
    """Whether a connection to 127.0.0.1:``port`` is refused within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        await asyncio.sleep(0.05)
    return False


async def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(
    printapi, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    printapi.extra_env["PRINTAPI_LOCK_TIMEOUT"] = "20"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
            async with db.transaction():
                await db.execute("SELECT 1 FROM prints WHERE id = $1 FOR UPDATE", print_id)
                in_flight = asyncio.create_task(
                    session.patch(
                        f"{base}{print_id}/", json={"alert_overwrite": "FAILED"}, headers=headers
                    )
                )
                await wait_for_lock_waits(db, 1)
                os.kill(server.pid, signal.SIGTERM)
                refused_while_draining = await refused(port)
            response = await in_flight
            body = await response.json()

        status = server.wait(timeout=STOP_TIMEOUT)
        said = output(server)

    assert refused_while_draining
    assert response.status == 200, body
    assert body["alert_overwrite"] == "FAILED"
    assert status == 0, said


@contextlib.contextmanager
def held_unix_socket():
    """A listening unix socket held by the test, as a service manager holds one."""
    directory = Path(tempfile.mkdtemp(prefix="printapi-"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(directory / "api.sock"))
        listener.listen(1024)
        yield listener
    finally:
        listener.close()
        shutil.rmtree(directory)


async def poll_until_stopped(url: str, headers: dict, connector, stopped: asyncio.Event):
    """GETs ``url`` on a new connection each time until ``stopped`` is set (at most 2,000
    times); the statuses, or the names of the errors met instead."""
    answers = []
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(2000):
            if stopped.is_set():
                break
            try:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    answers.append(response.status)
            except aiohttp.ClientError as error:
                answers.append(type(error).__name__)
    return answers


async def test_serve_restarted_on_a_passed_socket_refuses_no_request(printapi, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    url = "http://localhost/api/v1/prints/"
    command = ("serve", "--workers", "2")

    with held_unix_socket() as listener:
        path = listener.getsockname()
        with running(printapi.start(*command, passed=listener)) as first:
            async with aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path), timeout=aiohttp.ClientTimeout(total=1)
            ) as session:
                await wait_until_answering(first, session, url)
            stopped = asyncio.Event()
            clients = [
                asyncio.create_task(
                    poll_until_stopped(
                        url, headers, aiohttp.UnixConnector(path, force_close=True), stopped
                    )
                )
                for _ in range(4)
            ]
            await asyncio.sleep(0.5)
            first_status = await asyncio.to_thread(stop, first)
            first_log = output(first)
            with running(printapi.start(*command, passed=listener)) as second:
                await asyncio.sleep(2.0)
                stopped.set()
                answers = [answer for client in clients for answer in await client]
                second_log = output(second)

    assert first_status == 0, first_log
    assert set(answers) == {200}, [answer for answer in answers if answer != 200]
    assert first_log.count(" status=200 ") > 0
    assert second_log.count(" status=200 ") > 0


async def test_serve_passed_two_sockets_exits_1_saying_so(printapi):
    with held_unix_socket() as listener:
        process = printapi.start("serve", passed=listener, passed_count=2)
        with running(process):
            status = process.wait(timeout=COMMAND_TIMEOUT)
            said = output(process)

    assert status == 1, said
    assert said.endswith(
        "printapi serve: cannot serve on the socket the service manager passed: "
        "expected one passed socket, not 2\n"
    )


async def test_sigterm_while_workers_start_stops_cleanly(printapi):
    port = free_port()
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        await wait_for_workers(server, 2)  # Forked, and most likely still opening their pools.
        status = stop(server)
        said = output(server)

    assert status == 0, said
    assert "Traceback" not in said


async def test_serve_with_pending_migrations_exits_1_saying_to_migrate(
    printapi, empty_database_url
):
    names = [path.stem for path in migration_files()]
    port = str(free_port())

    result = printapi.run(
        "serve", "--host", "127.0.0.1", "--port", port, database_url=empty_database_url
    )

    assert result.returncode == 1, result.stderr
    assert result.stderr.endswith(
        f"printapi serve: migrations not applied: {', '.join(names)}; run: printapi migrate\n"
    )


@contextlib.contextmanager
def port_in_use():
    """A port of 127.0.0.1 that another socket listens on while the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def wait_for_output(process: subprocess.Popen, pattern: re.Pattern) -> re.Match:
    """Polls the process's output until ``pattern`` is found, for at most COMMAND_TIMEOUT."""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while (found := pattern.search(output(process))) is None:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{output(process)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {pattern.pattern} in {COMMAND_TIMEOUT} s:\n{output(process)}")
        time.sleep(0.1)
    return found


async def test_serve_with_a_damaged_key_file_exits_1_before_listening(printapi):
    key_file = printapi.var_dir / "secret.key"
    key_file.write_text("not a key\n")
    port = free_port()

    result = printapi.run("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"printapi serve: {key_file} must hold 32 bytes")
    assert result.stderr.count("\n") == 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # Nothing took the port.


async def test_serve_on_port_in_use_exits_1_saying_so(printapi):
    with port_in_use() as port:
        result = printapi.run("serve", "--host", "127.0.0.1", "--port", str(port))

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"printapi serve: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


async def test_serve_demo_on_port_in_use_exits_1_before_seeding_or_printing_a_token(printapi, db):
    with port_in_use() as port:
        result = printapi.run("serve", "--demo", "--host", "127.0.0.1", "--port", str(port))

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"printapi serve: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
    assert await count_rows(db) == dict.fromkeys(TABLES, 0)


async def test_serve_demo_on_port_0_prints_a_curl_line_that_answers_at_once(printapi, db):
    curl_line = re.compile(r"curl -H 'Authorization: Bearer ([0-9a-f]{40})' '([^']+)'")
    command = ("serve", "--demo", "--host", "127.0.0.1", "--port", "0")

    with running(printapi.start(*command)) as server:
        token, url = wait_for_output(server, curl_line).groups()
        # No retry: the socket was bound before the line was printed.
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            status, body = response.status, await response.text()

        assert status == 200, body
        assert URL(url).port != 0
        assert len(json.loads(body)) == 12
        assert stop(server) == 0, output(server)


async def test_serve_on_port_out_of_range_exits_1(printapi):
    result = printapi.run("serve", "--host", "127.0.0.1", "--port", "99999")

    assert result.returncode == 1, result.stderr
    assert result.stderr == "printapi serve: the port must be from 0 to 65535, not 99999\n"


async def test_serve_with_zero_workers_exits_1(printapi):
    result = printapi.run("serve", "--host", "127.0.0.1", "--port", "0", "--workers", "0")

    assert result.returncode == 1, result.stderr
    assert result.stderr == "printapi serve: --workers must be at least 1, not 0\n"


async def test_serve_on_unix_socket_in_missing_directory_exits_1(printapi, tmp_path):
    path = tmp_path / "missing" / "api.sock"

    result = printapi.run("serve", "--unix", str(path))

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"printapi serve: cannot listen on {path}: No such file or directory\n"
    )


async def test_serve_on_unix_path_of_a_regular_file_exits_1_and_keeps_the_file(printapi, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")

    result = printapi.run("serve", "--unix", str(path))

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"printapi serve: cannot listen on {path}: a file that is not a socket is there\n"
    )
    assert path.read_text() == "keep me"


# serve on a unix socket of its own


@contextlib.contextmanager
def socket_directory():
    """A short directory under /tmp for a unix socket, whose path may not be much over 100
    bytes; removed with what is left in it."""
    directory = Path(tempfile.mkdtemp(prefix="printapi-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


async def healthz_on_unix_socket(server: subprocess.Popen, path: Path) -> int:
    """The status of GET /healthz through the unix socket at ``path``, once it answers."""
    connector = aiohttp.UnixConnector(path=str(path))
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_until_answering(server, session, "http://localhost/healthz")
        async with session.get("http://localhost/healthz") as response:
            return response.status


async def test_serve_on_a_unix_socket_another_serve_listens_on_exits_1_leaving_it(printapi):
    with socket_directory() as directory:
        path = directory / "api.sock"
        command = ("serve", "--unix", str(path), "--workers", "1")
        with running(printapi.start(*command)) as first:
            await healthz_on_unix_socket(first, path)
            with running(printapi.start(*command)) as second:
                second_status = second.wait(timeout=START_TIMEOUT)
                second_said = output(second)
            first_answer = await healthz_on_unix_socket(first, path)
            first_status = stop(first)

    assert second_status == 1, second_said
    assert second_said == f"printapi serve: cannot listen on {path}: Address already in use\n"
    assert first_answer == 200
    assert first_status == 0, output(first)


async def test_serve_replaces_a_unix_socket_file_nothing_listens_on(printapi):
    with socket_directory() as directory:
        path = directory / "api.sock"
        with socket.socket(socket.AF_UNIX) as left_behind:
            left_behind.bind(str(path))  # Closed without a listen: only the file remains.
        with running(printapi.start("serve", "--unix", str(path), "--workers", "1")) as server:
            answer = await healthz_on_unix_socket(server, path)
            status = stop(server)

    assert answer == 200
    assert status == 0, output(server)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_serve_removes_the_unix_socket_file_it_made_when_stopped(printapi, workers):
    with socket_directory() as directory:
        path = directory / "api.sock"
        with running(printapi.start("serve", "--unix", str(path), "--workers", workers)) as server:
            await healthz_on_unix_socket(server, path)
            status = stop(server)
        left = sorted(entry.name for entry in directory.iterdir())

    assert status == 0, output(server)
    assert left == []


async def test_serve_on_a_passed_unix_socket_leaves_its_file_when_stopped(printapi):
    with held_unix_socket() as listener:
        path = Path(listener.getsockname())
        with running(printapi.start("serve", "--workers", "1", passed=listener)) as server:
            await healthz_on_unix_socket(server, path)
            status = stop(server)
        kept = stat.S_ISSOCK(path.stat().st_mode)

    assert status == 0, output(server)
    assert kept


# how serve stops


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited; an orphan's zombie counts, whoever reaps it."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until_gone(pids: list[int]) -> bool:
    """Whether every process of ``pids`` exits within STOP_TIMEOUT."""
    deadline = time.monotonic() + STOP_TIMEOUT
    while not all(gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_workers_of_a_killed_parent_finish_the_request_in_flight_and_exit(
    printapi, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    printapi.extra_env["PRINTAPI_LOCK_TIMEOUT"] = "20"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
            workers = await wait_for_workers(server, 2)
            async with db.transaction():
                await db.execute("SELECT 1 FROM prints WHERE id = $1 FOR UPDATE", print_id)
                in_flight = asyncio.create_task(
                    session.patch(
                        f"{base}{print_id}/", json={"alert_overwrite": "FAILED"}, headers=headers
                    )
                )
                await wait_for_lock_waits(db, 1)
                os.kill(server.pid, signal.SIGKILL)
                refused_while_draining = await refused(port)
            response = await in_flight
            body = await response.json()
        workers_gone = await asyncio.to_thread(wait_until_gone, workers)
        said = output(server)

    assert refused_while_draining
    assert response.status == 200, body
    assert body["alert_overwrite"] == "FAILED"
    assert workers_gone, said
    assert said.count(f" stopping: its parent {server.pid} is gone\n") == 2, said
    assert "Traceback" not in said


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_ctrl_c_twice_finishes_the_request_in_flight_and_exits_0_quietly(
    printapi, db, factory, owner, workers
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    printapi.extra_env["PRINTAPI_LOCK_TIMEOUT"] = "20"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers)

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
            async with db.transaction():
                await db.execute("SELECT 1 FROM prints WHERE id = $1 FOR UPDATE", print_id)
                in_flight = asyncio.create_task(
                    session.patch(
                        f"{base}{print_id}/", json={"alert_overwrite": "FAILED"}, headers=headers
                    )
                )
                await wait_for_lock_waits(db, 1)
                # A terminal's Ctrl-C reaches the parent and every worker at once.
                os.killpg(server.pid, signal.SIGINT)
                refused_while_draining = await refused(port)
                os.killpg(server.pid, signal.SIGINT)
            response = await in_flight
            body = await response.json()
        status = server.wait(timeout=STOP_TIMEOUT)
        said = output(server)

    assert refused_while_draining
    assert response.status == 200, body
    assert body["alert_overwrite"] == "FAILED"
    assert status == 0, said
    assert "Traceback" not in said


async def test_sigint_to_the_workers_before_the_parent_exits_0_quietly(printapi):
    port = free_port()
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, f"http://127.0.0.1:{port}/healthz")
        workers = await wait_for_workers(server, 2)
        for pid in workers:
            os.kill(pid, signal.SIGINT)
        os.kill(server.pid, signal.SIGINT)
        status = server.wait(timeout=STOP_TIMEOUT)
        said = output(server)

    assert status == 0, said
    assert "Traceback" not in said
    assert " exited with " not in said


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_serve_logs_when_a_stop_begins_and_how_long_it_took(printapi, workers):
    port = free_port()
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers)

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, f"http://127.0.0.1:{port}/healthz")
        status = stop(server)
        said = output(server)
    stop_lines = [
        line.split(" ", 2)[2] for line in said.splitlines() if " service.server: stop" in line
    ]

    assert status == 0, said
    assert stop_lines[0] == (
        "INFO service.server: stopping on SIGTERM; requests in flight have 10 s to finish"
    )
    assert re.fullmatch(r"INFO service\.server: stopped in \d+\.\d s", stop_lines[1]), said
    assert len(stop_lines) == 2, said


# the embedded PostgreSQL (DATABASE_URL unset)


async def test_migrate_on_embedded_postgresql_prints_no_warning(embedded_printapi):
    names = [path.stem for path in migration_files()]

    result = embedded_printapi.run("migrate")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "applied: " + ", ".join(names) + "\n"
    assert result.stderr == ""


async def test_embedded_postgresql_stops_after_a_process_using_it_was_killed(
    embedded_printapi,
):
    pgdata = embedded_printapi.var_dir / "pgdata"
    migrated = embedded_printapi.run("migrate")
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/prints/"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port))
    with running(embedded_printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, base)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=STOP_TIMEOUT)

    assert migrated.returncode == 0, migrated.stderr
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == [server.pid]

    result = embedded_printapi.run("migrate")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "migrations are up to date\n"
    assert not (pgdata / "postmaster.pid").exists()
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
