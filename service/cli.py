"""The ``printapi`` command line: migrate, serve, users and tokens, import, export, demo data."""

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import shlex
import signal
import stat
import sys

import asyncpg
import attrs

from service import embedded
from service.auth import EMAIL, MIN_PASSWORD_LENGTH, hash_password, new_token, token_digest
from service.db import connect_options
from service.logs import BatchingStreamHandler, BriefConnectionFailures
from service.migrate import MigrationError, migrate, pending
from service.openapi import ApiDocumentError
from service.params import JsonTextError, loads_strict
from service.progress import meter
from service.queries import Queries, SQLLoadError
from service.server import (
    STOP_SIGNALS,
    WorkerError,
    address,
    bind,
    closing_bound,
    inherited_socket,
    serve,
)
from service.settings import Settings, SettingsError
from service.transfer import ImportDataError, export_document, import_document

logger = logging.getLogger("service.cli")

#: The exit status of a command whose reader closed standard output, as if SIGPIPE killed it.
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE


class CommandError(Exception):
    """A command cannot do what it was asked; the message is for the person who asked."""


class OutputClosed(Exception):
    """The reader of standard output went away, as ``printapi export | head`` does."""


@contextlib.contextmanager
def _stdout_errors():
    """Turns a failed write to standard output into OutputClosed or a CommandError."""
    try:
        yield
    except BrokenPipeError:
        raise OutputClosed from None
    except OSError as error:
        raise CommandError(f"cannot write to standard output: {error.strerror}") from None


def _write(text: str) -> None:
    with _stdout_errors():
        sys.stdout.write(text)


def _silence_stdout() -> None:
    """Points standard output at /dev/null, so the flush at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@contextlib.contextmanager
def database(settings: Settings):
    """The settings with a database_url: DATABASE_URL, or the embedded server started for it."""
    if settings.database_url:
        yield settings
        return
    server = embedded.start(settings.var_dir)
    try:
        yield attrs.evolve(settings, database_url=server.get_uri())
    finally:
        embedded.stop(server)


async def _connect(settings: Settings) -> asyncpg.Connection:
    """A session of the server's own: the migrations' advisory lock and the statements
    asyncpg prepares by name would not survive a transaction pooler."""
    try:
        return await asyncpg.connect(settings.direct_url, server_settings={"timezone": "UTC"})
    except (OSError, asyncpg.PostgresError) as error:
        raise CommandError(f"cannot connect to the database: {error}") from error


async def _require_migrated(connection: asyncpg.Connection, queries: Queries) -> None:
    waiting = await pending(connection, queries)
    if waiting:
        raise CommandError(f"migrations not applied: {', '.join(waiting)}; run: printapi migrate")


def _run(settings: Settings, work, *, migrated: bool = True) -> None:
    """Runs ``work(connection, queries)`` against the configured database, then closes it.

    Unless ``migrated`` is false, refuses first a database with migrations not applied.
    """
    queries = Queries()

    async def main():
        connection = await _connect(settings)
        try:
            if migrated:
                await _require_migrated(connection, queries)
            return await work(connection, queries)
        finally:
            await connection.close()

    with database(settings) as ready:
        settings = ready
        return asyncio.run(main())


def cmd_migrate(settings: Settings, args) -> None:
    async def work(connection, queries):
        done = await migrate(connection, queries)
        print("applied: " + ", ".join(done) if done else "migrations are up to date")

    _run(settings, work, migrated=False)


def _read_password(email: str) -> str:
    try:
        if sys.stdin.isatty():
            password = getpass.getpass(f"Password for {email}: ")
            if getpass.getpass("Again: ") != password:
                raise CommandError("the two passwords differ")
        else:
            password = sys.stdin.buffer.readline().decode("utf-8").rstrip("\r\n")
    except UnicodeError:
        raise CommandError("the password is not valid UTF-8") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CommandError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _utf8(value: str, what: str) -> str:
    """The argument, unless its bytes were not UTF-8 (Python keeps those as surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CommandError(f"{what} {value!r} is not valid UTF-8") from None
    return value


def cmd_create_user(settings: Settings, args) -> None:
    if not EMAIL.fullmatch(_utf8(args.email, "the email")):
        raise CommandError(f"{args.email!r} is not an email address")
    password_hash = hash_password(_read_password(args.email))

    async def work(connection, queries):
        try:
            user_id = await connection.fetchval(
                queries.create_user.text, args.email, password_hash
            )
        except asyncpg.UniqueViolationError:
            raise CommandError(f"a user with the email {args.email} exists already") from None
        print(f"created user {user_id} ({args.email})", file=sys.stderr)

    _run(settings, work)


async def _create_token(connection, queries, email: str) -> str:
    user = await connection.fetchrow(queries.find_user_by_email.text, email)
    if user is None:
        raise CommandError(f"no user has the email {email}")
    token = new_token()
    await connection.execute(queries.create_token.text, user["id"], token_digest(token))
    return token


def cmd_create_token(settings: Settings, args) -> None:
    email = _utf8(args.email, "the email")

    async def work(connection, queries):
        print(await _create_token(connection, queries, email))

    _run(settings, work)


def _read_token() -> str:
    """The token on the first line of standard input: a secret on the command line would
    show in ``ps`` and in the shell's history."""
    try:
        token = sys.stdin.buffer.readline().decode("utf-8").strip()
    except UnicodeError:
        raise CommandError("the token on standard input is not valid UTF-8") from None
    if not token:
        raise CommandError("no token on standard input")
    return token


def cmd_revoke_token(settings: Settings, args) -> None:
    token = _read_token() if args.token == "-" else args.token

    async def work(connection, queries):
        revoked_at = await connection.fetchval(queries.revoke_token.text, token_digest(token))
        if revoked_at is None:
            raise CommandError("no such token")
        print(f"revoked (since {revoked_at.isoformat()})", file=sys.stderr)

    _run(settings, work)


def cmd_import(settings: Settings, args) -> None:
    try:
        if args.file == "-":
            raw = _read_all(sys.stdin.buffer, None)
        else:
            with open(args.file, "rb") as file:
                status = os.fstat(file.fileno())
                size = status.st_size if stat.S_ISREG(status.st_mode) else None
                raw = _read_all(file, size)
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror}") from None

    # Read as strictly as a request body: a name given twice would import one of two ids.
    try:
        document = loads_strict(raw)
    except JsonTextError as error:
        raise CommandError(f"{args.file} is not valid JSON: {error}") from None

    async def work(connection, queries):
        counts = await import_document(connection, queries, document)
        print(
            "imported " + ", ".join(f"{n} {kind}" for kind, n in counts.items()), file=sys.stderr
        )

    _run(settings, work)


def _read_all(file, size: int | None) -> bytearray:
    """The whole of a file, read in pieces so that a terminal can show how far it got."""
    data = bytearray()
    with meter("reading", size, "B") as read:
        while chunk := file.read(1 << 20):
            data += chunk
            read.update(len(chunk))
    return data


def cmd_export(settings: Settings, args) -> None:
    from service.models import dumps

    async def work(connection, queries):
        await export_document(connection, queries, _write, dumps)
        with _stdout_errors():
            sys.stdout.flush()

    _run(settings, work)


async def seed_demo(connection, queries) -> str:
    """Fills an empty database with the demo history; returns a new token for the demo user."""
    from service.demo import DEMO_EMAIL, demo_document

    if not await connection.fetchval(queries.database_is_empty.text):
        raise CommandError("the database is not empty; seed-demo only fills an empty one")
    await import_document(connection, queries, demo_document())
    return await _create_token(connection, queries, DEMO_EMAIL)


def cmd_seed_demo(settings: Settings, args) -> None:
    async def work(connection, queries):
        print(await seed_demo(connection, queries))

    _run(settings, work)


def cmd_serve(settings: Settings, args) -> None:
    settings = attrs.evolve(
        settings,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        # Read or made once here, so that every worker gets the same key and a bad one
        # stops the command before anything starts.
        secret_key=settings.session_key(),
    )
    _utf8(settings.host, "the host")
    if args.workers < 1:
        raise CommandError(f"--workers must be at least 1, not {args.workers}")
    if not 0 <= settings.port <= 65535:
        raise CommandError(f"the port must be from 0 to 65535, not {settings.port}")

    # Bound first: a taken address stops the command before the database starts, and before
    # --demo prints a token that no server would answer.
    try:
        with _listening(settings, args.unix) as sock, database(settings) as ready:
            if args.demo:
                asyncio.run(_prepare_demo(ready, sock))
            else:
                asyncio.run(_check_migrated(ready))
            if ready.direct_url != ready.database_url:
                asyncio.run(_check_pooled_connection(ready))
            serve(ready, workers=args.workers, sock=sock)
    finally:
        # Held back for good: Python restores the default handlers as it exits, and a late
        # Ctrl-C would then turn a clean stop into death by SIGINT.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def _listening(settings: Settings, unix_path: str | None):
    """The socket a service manager passed (--host, --port and --unix then go unused), or
    one bound here, whose unix socket file goes when the block is left."""
    try:
        passed = inherited_socket(os.environ)
    except OSError as error:
        raise CommandError(
            f"cannot serve on the socket the service manager passed: {error.strerror}"
        ) from None
    if passed is not None:
        with contextlib.closing(passed):
            yield passed
        return

    try:
        sock = bind(settings, unix_path)
    except OSError as error:
        where = unix_path or f"{settings.host}:{settings.port}"
        raise CommandError(f"cannot listen on {where}: {error.strerror or error}") from None
    with closing_bound(sock):
        yield sock


async def _check_migrated(settings: Settings) -> None:
    connection = await _connect(settings)
    try:
        await _require_migrated(connection, Queries())
    finally:
        await connection.close()


async def _check_pooled_connection(settings: Settings) -> None:
    """Connects to DATABASE_URL once as the workers' pools will, when it is not where the
    commands connect: a pooler that refuses the pool's settings stops `serve` in one line,
    before any worker starts."""
    try:
        connection = await asyncpg.connect(settings.database_url, **connect_options(settings))
    except asyncpg.ProtocolViolationError as error:
        if "unsupported startup parameter" not in str(error):
            raise CommandError(f"cannot connect to DATABASE_URL: {error}") from error
        raise CommandError(
            f"DATABASE_URL refused the pool's session settings ({error}), as a transaction "
            "pooler such as PgBouncer does: set PRINTAPI_TRANSACTION_POOLING=true"
        ) from None
    except (OSError, asyncpg.PostgresError) as error:
        raise CommandError(f"cannot connect to DATABASE_URL: {error}") from error
    await connection.close()


async def _prepare_demo(settings: Settings, sock) -> None:
    """Migrates, seeds an empty database, and prints a curl line with a fresh demo token."""
    from service.demo import DEMO_EMAIL, DEMO_PASSWORD

    connection = await _connect(settings)
    queries = Queries()
    try:
        await migrate(connection, queries)
        if await connection.fetchval(queries.database_is_empty.text):
            print("filling the empty database with demo data...", file=sys.stderr)
            token = await seed_demo(connection, queries)
        else:
            token = await _create_token(connection, queries, DEMO_EMAIL)
    except CommandError:
        print(f"no {DEMO_EMAIL} user in this database: no demo token", file=sys.stderr)
        return
    finally:
        await connection.close()

    where = address(sock)
    curl, base = "curl", where
    if not where.startswith("http://"):
        curl, base = f"curl --unix-socket {shlex.quote(where)}", "http://localhost"
    url = f"{base}/api/v1/prints/?start=0&limit=12&sorting=date_desc"
    print(f"\nDemo user: {DEMO_EMAIL} (password {DEMO_PASSWORD})")
    print(f"Try:\n  {curl} -H 'Authorization: Bearer {token}' '{url}'\n", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printapi",
        description="The print history API. DATABASE_URL names the database; when it is "
        "unset, an embedded PostgreSQL under var/ is used.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("migrate", help="apply the migrations not yet applied")
    command.set_defaults(run=cmd_migrate)

    command = commands.add_parser("serve", help="run the service")
    command.add_argument("--host", help="address to listen on (default: PRINTAPI_HOST)")
    command.add_argument("--port", type=int, help="port to listen on (default: PRINTAPI_PORT)")
    command.add_argument("--unix", metavar="PATH", help="listen on this unix socket instead")
    command.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        metavar="N",
        help="worker processes sharing the socket (default: one per core, %(default)s here)",
    )
    command.add_argument(
        "--demo",
        action="store_true",
        help="migrate, fill an empty database with demo data, print a token",
    )
    command.set_defaults(run=cmd_serve)

    command = commands.add_parser("create-user", help="create a user; password on stdin")
    command.add_argument("email")
    command.set_defaults(run=cmd_create_user)

    command = commands.add_parser("create-token", help="print a new API token for a user")
    command.add_argument("email")
    command.set_defaults(run=cmd_create_token)

    command = commands.add_parser("revoke-token", help="revoke an API token")
    command.add_argument("token", help="the token, or - to read it from stdin (kept out of ps)")
    command.set_defaults(run=cmd_revoke_token)

    command = commands.add_parser("import", help="load users, printers, prints and feedbacks")
    command.add_argument("file", help="a JSON file in the import format, or - for stdin")
    command.set_defaults(run=cmd_import)

    command = commands.add_parser("export", help="write everything in the import format")
    command.set_defaults(run=cmd_export)

    command = commands.add_parser("seed-demo", help="fill an empty database with demo data")
    command.set_defaults(run=cmd_seed_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_environ()
        # The format names none of these, which logging would otherwise find for every
        # line (the caller's frame, the thread, the process): 4.7 of 12.7 us a line here.
        logging._srcfile = None
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            handlers=[BatchingStreamHandler(sys.stderr)],
        )
        # pgserver narrates every step of starting PostgreSQL at INFO; keep its warnings only.
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        logging.getLogger("asyncpg.pool").addFilter(BriefConnectionFailures())
        args.run(settings, args)
        with _stdout_errors():
            sys.stdout.flush()
    except OutputClosed:
        _silence_stdout()
        return EXIT_OUTPUT_CLOSED
    except (
        ApiDocumentError,
        CommandError,
        SettingsError,
        ImportDataError,
        MigrationError,
        SQLLoadError,
        WorkerError,
    ) as error:
        print(f"printapi {args.command}: {error}", file=sys.stderr)
        return 1
    except (asyncpg.DuplicatePreparedStatementError, asyncpg.InvalidSQLStatementNameError):
        # Another session's statement under the same name, or ours gone: the connection is
        # shared by a transaction pooler.
        print(
            f"printapi {args.command}: the database connection is shared with other clients, "
            "as through a transaction pooler such as PgBouncer; set "
            "PRINTAPI_DIRECT_DATABASE_URL to PostgreSQL itself",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
