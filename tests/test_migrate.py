"""The migration runner: applies pending files once, in order, and refuses an edited one."""

import uuid

import asyncpg
import pytest
from yarl import URL

from service.migrate import MigrationError, migrate, pending
from service.queries import Queries


@pytest.fixture
async def fresh(server_url):
    """A connection to a new, empty database, dropped after the test."""
    admin = await asyncpg.connect(server_url)
    name = f"printapi_migrate_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    server = URL(server_url)
    connection = await asyncpg.connect(str(server.with_path(f"/{name}").with_query(server.query)))
    yield connection
    await connection.close()
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


def _migrations(directory, files: dict[str, str]):
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


async def test_pending_files_apply_in_order_and_are_recorded(fresh, tmp_path):
    directory = _migrations(
        tmp_path,
        {
            "0002_second.sql": "ALTER TABLE things ADD COLUMN size int;",
            "0001_first.sql": "CREATE TABLE things (id int);",
        },
    )

    applied = await migrate(fresh, Queries(), directory)

    assert applied == ["0001_first", "0002_second"]
    rows = await fresh.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [row["version"] for row in rows] == ["0001_first", "0002_second"]


async def test_second_run_applies_nothing(fresh, tmp_path):
    directory = _migrations(tmp_path, {"0001_first.sql": "CREATE TABLE things (id int);"})
    await migrate(fresh, Queries(), directory)

    applied = await migrate(fresh, Queries(), directory)

    assert applied == []
    assert await pending(fresh, Queries(), directory) == []


async def test_failing_file_leaves_nothing_of_itself(fresh, tmp_path):
    directory = _migrations(
        tmp_path,
        {
            "0001_first.sql": "CREATE TABLE things (id int);",
            "0002_broken.sql": "CREATE TABLE more (id int); SELECT no_such_column FROM things;",
        },
    )

    with pytest.raises(asyncpg.UndefinedColumnError):
        await migrate(fresh, Queries(), directory)

    assert await fresh.fetchval("SELECT to_regclass('more')") is None
    assert await pending(fresh, Queries(), directory) == ["0002_broken"]


async def test_edited_applied_file_is_refused(fresh, tmp_path):
    directory = _migrations(tmp_path, {"0001_first.sql": "CREATE TABLE things (id int);"})
    await migrate(fresh, Queries(), directory)
    (directory / "0001_first.sql").write_text("CREATE TABLE things (id bigint);")

    with pytest.raises(MigrationError, match=r"0001_first\.sql changed after it was applied"):
        await migrate(fresh, Queries(), directory)


async def test_badly_named_file_is_refused(fresh, tmp_path):
    directory = _migrations(tmp_path, {"first.sql": "SELECT 1;"})

    with pytest.raises(MigrationError, match=r"named NNNN_what_it_does\.sql"):
        await migrate(fresh, Queries(), directory)


async def test_project_migrations_leave_nothing_pending(fresh):
    await migrate(fresh, Queries())

    assert await pending(fresh, Queries()) == []
    assert await fresh.fetchval("SELECT to_regclass('print_rows')::text") == "print_rows"
