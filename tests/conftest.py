"""Fixtures: one scratch database per session, emptied before each test, and a running app.

The database lives on the server DATABASE_URL names when it is set, and on an embedded
PostgreSQL under var/ otherwise. Either way the suite creates its own database and drops
it at the end; the database in DATABASE_URL is never touched.
"""

import asyncio
import datetime
import os
import uuid

import asyncpg
import attrs
import pytest
from argon2 import PasswordHasher
from hypothesis import settings as hypothesis_settings
from hypothesis.database import DirectoryBasedExampleDatabase
from yarl import URL

from service import PROJECT_ROOT, embedded
from service.app import create_app
from service.auth import new_token, token_digest
from service.migrate import migrate
from service.queries import Queries
from service.settings import Settings

#: The session-cookie key of the tests: 32 bytes in URL-safe base64.
TEST_SECRET_KEY = b"0123456789abcdef0123456789abcdef"
#: Users made by the factory get cheap argon2 parameters: the hash records them, so login
#: verifies as usual, in a millisecond instead of a tenth of a second.
_FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
TABLES = "users, api_tokens, printers, prints, print_shot_feedbacks, login_attempts"

# Property tests (tests/test_properties.py) run the same examples on every run, so a red
# build is the code's doing, not the luck of the draw, and fails again the same way; no
# deadline, since the machines are shared and their timings are noise; nothing saved, as
# there is nothing random to replay. The examples per test are a budget: the parsers'
# properties take five times as many, those through the app half as many.
# `pytest --hypothesis-profile=explore` looks for new failures with random examples and
# keeps the failing ones under var/ to replay them first the next time.
hypothesis_settings.register_profile(
    "printapi", max_examples=200, deadline=None, derandomize=True, database=None
)
hypothesis_settings.register_profile(
    "explore",
    max_examples=1000,
    deadline=None,
    database=DirectoryBasedExampleDatabase(PROJECT_ROOT / "var" / "hypothesis"),
)
hypothesis_settings.load_profile("printapi")


async def admin(url: str, statement: str) -> None:
    """Runs one statement on its own connection, for CREATE and DROP DATABASE."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _migrate(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection, Queries())
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def server_url():
    """A URL of the PostgreSQL server the suite uses: DATABASE_URL's, or an embedded one."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    server = embedded.start(PROJECT_ROOT / "var", name="test-pgdata")
    yield server.get_uri()
    embedded.stop(server)


@pytest.fixture(scope="session")
def database_url(server_url):
    """The URL of a migrated database made for this session and dropped after it."""
    name = f"printapi_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(server_url, f'CREATE DATABASE "{name}"'))
    server = URL(server_url)
    url = str(server.with_path(f"/{name}").with_query(server.query))
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(database_url):
    """A connection to the test database, emptied first so each test starts from nothing."""
    connection = await asyncpg.connect(database_url, server_settings={"timezone": "UTC"})
    await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    yield connection
    await connection.close()


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return Settings(
        database_url=database_url,
        var_dir=tmp_path,
        secret_key=TEST_SECRET_KEY,
        pool_min_size=1,
        pool_max_size=4,
    )


@pytest.fixture
async def client(aiohttp_client, settings, db):
    """A test client of the real app, served on 127.0.0.1 against the test database."""
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def unreachable_client(aiohttp_client, settings):
    """The real app on a database nothing answers for: port 1 of this machine."""
    unreachable = attrs.evolve(
        settings,
        database_url="postgresql://postgres@127.0.0.1:1/none",
        pool_min_size=0,
        acquire_timeout=1.0,
    )
    return await aiohttp_client(create_app(unreachable))


def at(text: str) -> datetime.datetime:
    """A UTC timestamp from a short ISO string, for test data."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


class Factory:
    """Makes rows with defaults that a test overrides; each method returns the new id."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self._emails = 0

    async def user(self, email: str | None = None, password: str | None = None) -> int:
        if email is None:
            self._emails += 1
            email = f"user{self._emails}@example.com"
        password_hash = _FAST_HASHER.hash(password) if password else None
        return await self.connection.fetchval(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id",
            email,
            password_hash,
        )

    async def token(self, user_id: int) -> str:
        token = new_token()
        await self.connection.execute(
            "INSERT INTO api_tokens (user_id, token_hash) VALUES ($1, $2)",
            user_id,
            token_digest(token),
        )
        return token

    async def printer(self, user_id: int, name: str = "MK4") -> int:
        return await self.connection.fetchval(
            "INSERT INTO printers (user_id, name) VALUES ($1, $2) RETURNING id", user_id, name
        )

    async def print(self, user_id: int, **fields) -> int:
        values = {"filename": "benchy.gcode", **fields}
        columns = ", ".join(["user_id", *values])
        placeholders = ", ".join(f"${n}" for n in range(1, len(values) + 2))
        return await self.connection.fetchval(
            f"INSERT INTO prints ({columns}) VALUES ({placeholders}) RETURNING id",
            user_id,
            *values.values(),
        )

    async def feedback(
        self,
        print_id: int,
        answer: str | None = None,
        answered_at: datetime.datetime | None = None,
        image_url: str | None = None,
    ) -> int:
        return await self.connection.fetchval(
            "INSERT INTO print_shot_feedbacks (print_id, image_url, answer, answered_at)"
            " VALUES ($1, coalesce($2, 'https://example.com/f.jpg'), $3, $4) RETURNING id",
            print_id,
            image_url,
            answer,
            answered_at,
        )


@pytest.fixture
def factory(db) -> Factory:
    return Factory(db)


@pytest.fixture
async def owner(factory):
    """A user with a token: (user id, request headers carrying the token)."""
    user_id = await factory.user("owner@example.com", password="correct horse")
    token = await factory.token(user_id)
    return user_id, {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def stranger(factory):
    """Another user with a token, whose prints the owner must never see."""
    user_id = await factory.user("stranger@example.com")
    token = await factory.token(user_id)
    return user_id, {"Authorization": f"Bearer {token}"}
