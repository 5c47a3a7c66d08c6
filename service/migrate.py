"""Applies the numbered files of migrations/ that the database has not seen yet.

A PostgreSQL advisory lock makes a second process wait while the first migrates; it then
finds nothing left to do. Each file runs in its own transaction with its record in
schema_migrations, so a file is applied wholly or not at all.
"""

import hashlib
import logging
import re
from pathlib import Path

import asyncpg

from service import PROJECT_ROOT
from service.queries import Queries

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
#: The advisory lock key of this service's migrations (the digits spell "printapi" on a keypad).
LOCK_KEY = 77468274
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """The migrations on disk and those recorded in the database disagree."""


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in the order they apply; raises MigrationError on a stray name."""
    paths = sorted(directory.glob("*.sql"))
    for path in paths:
        if not _NAME.match(path.name):
            raise MigrationError(f"{path}: migration files are named NNNN_what_it_does.sql")
    return paths


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def migrate(
    connection: asyncpg.Connection, queries: Queries, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Applies the pending migrations and returns their names, in the order applied.

    Raises MigrationError when an applied file was edited since, or is no longer on disk.
    """
    files = migration_files(directory)
    await connection.execute(queries.migrations_lock.text, LOCK_KEY)
    try:
        await connection.execute(queries.migrations_create_table.text)
        applied = {
            row["version"]: row["checksum"]
            for row in await connection.fetch(queries.migrations_applied.text)
        }
        on_disk = {path.stem for path in files}
        for version in sorted(set(applied) - on_disk):
            raise MigrationError(f"migration {version} is applied but missing from {directory}")

        done = []
        for path in files:
            checksum = _checksum(path)
            if path.stem in applied:
                if applied[path.stem] != checksum:
                    raise MigrationError(
                        f"{path} changed after it was applied; add a new migration instead"
                    )
                continue
            logger.info("applying migration %s", path.name)
            async with connection.transaction():
                await connection.execute(path.read_text(encoding="utf-8"))
                await connection.execute(queries.migrations_record.text, path.stem, checksum)
            done.append(path.stem)
        return done
    finally:
        await connection.execute(queries.migrations_unlock.text, LOCK_KEY)


async def pending(
    connection: asyncpg.Connection, queries: Queries, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """The names of the migrations not applied yet (all of them on an empty database).

    Reads only: a database that was never migrated is left as it is.
    """
    applied = set()
    if await connection.fetchval(queries.migrations_table_exists.text):
        rows = await connection.fetch(queries.migrations_applied.text)
        applied = {row["version"] for row in rows}
    return [path.stem for path in migration_files(directory) if path.stem not in applied]
