"""``make fuzz``: schemathesis against a real ``printapi serve`` holding the demo data.

Makes a scratch database (on DATABASE_URL's server, or the tests' embedded PostgreSQL under
var/), migrates it, fills it with the demo history and takes a token of the demo user.
Then serves it on 127.0.0.1 at a port the kernel picks, runs schemathesis on every
operation of docs/openapi.json with that token, checks that the token still works, and
stops the server by its process id and drops the database, whatever happened.

Run as ``python -m tests.fuzz [--max-examples N] [schemathesis options...]``; the exit
status is schemathesis's, or 1 when the run could not be made or the token stopped working.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg
from yarl import URL

from service import PROJECT_ROOT, embedded
from service.cli import seed_demo
from service.migrate import migrate
from service.openapi import DOCUMENT_PATH, DOCUMENT_ROUTE
from service.queries import Queries

BIN = Path(sys.executable).parent
#: Seconds the server may take to start and to stop, and the whole schemathesis run.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
RUN_TIMEOUT = 900
SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")
SERVICE_ERROR = re.compile(r" (ERROR|CRITICAL) service\.")

#: Each live print of the demo user with its frames' ids, for tests/fuzz_hooks.py.
PRINT_FRAMES_SQL = """
    SELECT p.id, coalesce(array_agg(f.id ORDER BY f.id) FILTER (WHERE f.id IS NOT NULL), '{}')
           AS frames
      FROM prints p LEFT JOIN print_shot_feedbacks f ON f.print_id = p.id
     WHERE p.deleted_at IS NULL
     GROUP BY p.id
"""


#: Operations on one print: the run must reach real prints there, not only 404s.
PRINT_OPERATIONS = [
    f"{method} /api/v1/{noun}/{{print_id}}/"
    for noun in ("prints", "print")
    for method in ("GET", "PATCH")
]


class FuzzError(Exception):
    """The run could not be set up, or the service misbehaved outside schemathesis's view."""


@contextlib.contextmanager
def postgres_server():
    """A URL of a PostgreSQL server: DATABASE_URL's, or the tests' embedded one."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    server = embedded.start(PROJECT_ROOT / "var", name="test-pgdata")
    try:
        yield server.get_uri()
    finally:
        embedded.stop(server)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def scratch_database(server_url: str):
    """A new database on the server, dropped when the block is left."""
    name = f"printapi_fuzz_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    server = URL(server_url)
    try:
        yield str(server.with_path(f"/{name}").with_query(server.query))
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def fill_with_demo(database_url: str) -> tuple[str, dict[int, list[int]]]:
    """Migrates and seeds the database: the demo user's token, and its prints' frames."""
    connection = await asyncpg.connect(database_url, server_settings={"timezone": "UTC"})
    try:
        queries = Queries()
        await migrate(connection, queries)
        token = await seed_demo(connection, queries)
        rows = await connection.fetch(PRINT_FRAMES_SQL)
    finally:
        await connection.close()
    return token, {row["id"]: list(row["frames"]) for row in rows}


@contextlib.contextmanager
def running_service(database_url: str, log_path: Path):
    """``printapi serve`` on 127.0.0.1 at a free port: yields its base URL; stopped by pid."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PRINTAPI_VAR_DIR": str(log_path.parent),
        "PRINTAPI_LOG_LEVEL": "WARNING",
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(BIN / "printapi"), "serve", "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield _wait_until_serving(process, log_path)
        if process.poll() is not None:
            raise FuzzError(f"the server exited with {process.returncode} during the run")
    finally:
        _stop(process)


def service_errors(log_path: Path) -> list[str]:
    """The service's own ERROR lines: a crash the answers did not show, as in a cut stream.

    aiohttp's own complaints about requests its parser refuses (schemathesis probes with a
    NUL in a header) are the client's fault and are not counted.
    """
    return [
        line
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        if SERVICE_ERROR.search(line)
    ]


def _wait_until_serving(process: subprocess.Popen, log_path: Path) -> str:
    """The server's base URL once it answers, within START_TIMEOUT seconds."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FuzzError(f"the server exited with {process.returncode} at start")
        found = SERVING.search(log_path.read_text())
        if found:
            base_url = found.group(1)
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(base_url + DOCUMENT_ROUTE, timeout=5) as response:
                    response.read()
                return base_url
        time.sleep(0.1)
    raise FuzzError(f"the server did not answer within {START_TIMEOUT} s")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server by its id, then SIGKILL to its group if it does not stop."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)


def token_works(base_url: str, token: str) -> bool:
    """True when the token still lists prints: no request of the run may have revoked it."""
    request = urllib.request.Request(
        base_url + "/api/v1/prints/?sorting=date_desc&limit=1",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def run_schemathesis(base_url: str, token: str, work_dir: Path, max_examples: int, extra) -> int:
    """schemathesis's exit status after every phase, every check, on every operation."""
    command = [
        str(BIN / "schemathesis"),
        "run",
        # The file, not the served copy (tests/test_openapi.py shows the two are the same):
        # schemathesis leaves out the operation that serves the document it loaded.
        str(DOCUMENT_PATH),
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        # One worker: with two, hypothesis's threads parsed lambda sources at once and
        # CPython 3.11's parser failed now and then ("AST constructor recursion depth
        # mismatch"), failing the run for nothing the service did.
        "--workers",
        "1",
        "--request-timeout",
        "10",
        *extra,
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
        "FUZZ_DATA": str(work_dir / "prints.json"),
        "FUZZ_TALLY": str(work_dir / "tally.tsv"),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    try:
        return subprocess.run(command, env=env, cwd=work_dir, timeout=RUN_TIMEOUT).returncode
    except subprocess.TimeoutExpired:
        raise FuzzError(f"schemathesis did not finish within {RUN_TIMEOUT} s") from None


def read_tally(path: Path) -> dict[str, collections.Counter]:
    """Answers per operation and status, from the lines tests/fuzz_hooks.py wrote."""
    tally: dict[str, collections.Counter] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        label, status = line.rsplit("\t", 1)
        tally.setdefault(label, collections.Counter())[int(status)] += 1
    return tally


def format_tally(tally: dict[str, collections.Counter]) -> str:
    lines = ["answers by operation and status:"]
    for label in sorted(tally):
        counts = " ".join(f"{status}x{n}" for status, n in sorted(tally[label].items()))
        lines.append(f"  {label:<36} {counts}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--max-examples", type=int, default=100, metavar="N")
    args, extra = parser.parse_known_args(argv)

    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="printapi-fuzz-") as work,
        postgres_server() as server_url,
        scratch_database(server_url) as database_url,
    ):
        work_dir = Path(work)
        token, frames = asyncio.run(fill_with_demo(database_url))
        (work_dir / "prints.json").write_text(json.dumps(frames))
        (work_dir / "tally.tsv").touch()

        log_path = work_dir / "server.log"
        with running_service(database_url, log_path) as base_url:
            status = run_schemathesis(base_url, token, work_dir, args.max_examples, extra)
            if not token_works(base_url, token):
                print("fuzz: the demo token stopped working during the run", file=sys.stderr)
                status = status or 1
        errors = service_errors(log_path)
        if errors:
            print("fuzz: the service logged errors:", *errors, sep="\n  ", file=sys.stderr)
            status = status or 1
        tally = read_tally(work_dir / "tally.tsv")
        print(format_tally(tally), file=sys.stderr)
        unreached = [label for label in PRINT_OPERATIONS if tally.get(label, {}).get(200, 0) == 0]
        if unreached:
            print(f"fuzz: no real print answered: {', '.join(unreached)}", file=sys.stderr)
            status = status or 1
    print(f"fuzz: exit {status} after {time.monotonic() - started:.0f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FuzzError as error:
        print(f"fuzz: {error}", file=sys.stderr)
        sys.exit(1)
