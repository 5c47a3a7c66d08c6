"""Failed logins are counted per email and per client address, in PostgreSQL: past a limit,
login answers 429 with Retry-After before any password is hashed."""

import asyncio
import contextlib

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from service import handlers
from service.app import create_app
from service.keys import SETTINGS
from service.limits import client_address
from service.settings import Settings

LOGIN = "/api/v1/auth/login/"
PER_EMAIL = 3
PER_ADDRESS = 5
WRONG = "wrong horse"


@pytest.fixture
def limited(settings):
    return attrs.evolve(
        settings, login_failures_per_email=PER_EMAIL, login_failures_per_address=PER_ADDRESS
    )


@pytest.fixture
async def app_client(aiohttp_client, limited, db):
    return await aiohttp_client(create_app(limited))


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The passwords that login checked with argon2, in order."""
    checked = []
    verify = handlers.verify_password

    def counting(password_hash, password):
        checked.append(password)
        return verify(password_hash, password)

    monkeypatch.setattr(handlers, "verify_password", counting)
    return checked


async def login(client, email: str, password: str = WRONG) -> aiohttp.ClientResponse:
    return await client.post(LOGIN, json={"email": email, "password": password})


@contextlib.asynccontextmanager
async def from_address(client, address: str):
    """A session whose connections come from ``address``, another loopback address."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(base_url=client.make_url("/"), connector=connector) as s:
        yield s


def too_many(seconds: int) -> dict:
    return {"detail": f"Too many failed logins; try again in {seconds} seconds."}


async def attempts(db) -> dict[str, int]:
    rows = await db.fetch("SELECT kind, key, attempts FROM login_attempts ORDER BY kind, key")
    return {f"{row['kind']}:{row['key']}": row["attempts"] for row in rows}


async def email_key(db, email: str) -> str:
    return await db.fetchval("SELECT login_email_key($1)", email)


async def test_defaults_are_10_per_email_and_100_per_address_in_15_minutes(settings):
    assert settings.login_failures_per_email == 10
    assert settings.login_failures_per_address == 100
    assert settings.login_window == 900


async def test_email_past_its_failures_answers_429_with_retry_after(app_client, db, owner):
    statuses = [(await login(app_client, "owner@example.com")).status for _ in range(PER_EMAIL)]
    await db.execute("UPDATE login_attempts SET window_ends = now() + interval '120 seconds'")

    response = await login(app_client, "owner@example.com")

    assert statuses == [401] * PER_EMAIL
    assert response.status == 429, await response.text()
    assert await response.json() == too_many(120)
    assert response.headers["Retry-After"] == "120"


async def test_429_comes_before_the_password_is_hashed(app_client, owner, hashed):
    for _ in range(PER_EMAIL):
        await login(app_client, "owner@example.com")

    response = await login(app_client, "owner@example.com", "correct horse")

    assert response.status == 429, await response.text()
    assert hashed == [WRONG] * PER_EMAIL
    assert "Set-Cookie" not in response.headers


async def test_unknown_email_is_counted_and_answered_alike(app_client, db, owner):
    for email in ("owner@example.com", "nobody@example.com"):
        for _ in range(PER_EMAIL):
            await login(app_client, email)
    await db.execute("UPDATE login_attempts SET window_ends = now() + interval '60 seconds'")

    known = await login(app_client, "owner@example.com")
    unknown = await login(app_client, "nobody@example.com")

    assert (known.status, unknown.status) == (429, 429)
    assert await known.json() == await unknown.json() == too_many(60)
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"] == "60"


async def test_email_is_counted_whatever_its_case(app_client, owner):
    for email in ("owner@example.com", "OWNER@example.com", "Owner@Example.com"):
        await login(app_client, email)

    response = await login(app_client, "owner@EXAMPLE.COM")

    assert response.status == 429, await response.text()


async def test_email_is_counted_across_addresses(app_client, db, owner):
    for n in range(PER_EMAIL):
        async with from_address(app_client, f"127.0.0.{n + 2}") as session:
            await login(session, "owner@example.com")

    async with from_address(app_client, "127.0.0.9") as session:
        response = await login(session, "owner@example.com")

    assert response.status == 429, await response.text()
    key = await email_key(db, "owner@example.com")
    assert await attempts(db) == {
        "address:127.0.0.2": 1,
        "address:127.0.0.3": 1,
        "address:127.0.0.4": 1,
        "address:127.0.0.9": 1,
        f"email:{key}": PER_EMAIL + 1,
    }


async def test_address_past_its_failures_answers_429_for_any_email(app_client, owner):
    statuses = [
        (await login(app_client, f"guess{n}@example.com")).status for n in range(PER_ADDRESS)
    ]

    refused = await login(app_client, "owner@example.com", "correct horse")
    async with from_address(app_client, "127.0.0.2") as session:
        elsewhere = await login(session, "owner@example.com", "correct horse")

    assert statuses == [401] * PER_ADDRESS
    assert refused.status == 429, await refused.text()
    assert elsewhere.status == 200, await elsewhere.text()


async def test_window_that_ended_counts_afresh(app_client, db, owner):
    for _ in range(PER_EMAIL + 1):
        await login(app_client, "owner@example.com")
    # Moves the window's end into the past, as if its 15 minutes had gone by.
    await db.execute("UPDATE login_attempts SET window_ends = now() - interval '1 second'")

    response = await login(app_client, "owner@example.com", "correct horse")

    assert response.status == 200, await response.text()
    assert await attempts(db) == {"address:127.0.0.1": 0}


async def test_success_forgets_the_email_and_takes_itself_back_from_the_address(
    app_client, db, owner
):
    for _ in range(PER_EMAIL - 1):
        await login(app_client, "owner@example.com")

    response = await login(app_client, "owner@example.com", "correct horse")
    after = [(await login(app_client, "owner@example.com")).status for _ in range(PER_EMAIL)]

    assert response.status == 200, await response.text()
    assert after == [401] * PER_EMAIL
    key = await email_key(db, "owner@example.com")
    assert await attempts(db) == {
        "address:127.0.0.1": PER_EMAIL - 1 + PER_EMAIL,
        f"email:{key}": PER_EMAIL,
    }


async def test_parallel_guesses_get_exactly_the_limit_checked(app_client, owner, hashed):
    guesses = [login(app_client, "owner@example.com") for _ in range(PER_EMAIL + 4)]

    statuses = sorted(response.status for response in await asyncio.gather(*guesses))

    assert statuses == [401] * PER_EMAIL + [429] * 4
    assert len(hashed) == PER_EMAIL


async def test_count_holds_across_two_apps_on_one_database(aiohttp_client, limited, db, owner):
    first = await aiohttp_client(create_app(limited))
    second = await aiohttp_client(create_app(limited))
    for client in (first, second, first):
        await login(client, "owner@example.com")

    on_first = await login(first, "owner@example.com")
    on_second = await login(second, "owner@example.com")

    assert (on_first.status, on_second.status) == (429, 429)


async def test_limit_of_zero_counts_but_never_refuses(aiohttp_client, limited, db, owner):
    unlimited = attrs.evolve(limited, login_failures_per_address=0)
    client = await aiohttp_client(create_app(unlimited))

    statuses = [
        (await login(client, f"guess{n}@example.com")).status for n in range(PER_ADDRESS + 2)
    ]

    assert statuses == [401] * (PER_ADDRESS + 2)


async def test_each_attempt_deletes_up_to_100_rows_of_ended_windows(app_client, db, owner):
    await db.execute(
        "INSERT INTO login_attempts (kind, key, attempts, window_ends)"
        " SELECT 'address', '10.0.0.' || n, 1, now() - interval '1 second'"
        " FROM generate_series(1, 250) AS n"
    )
    await db.execute(
        "INSERT INTO login_attempts (kind, key, attempts, window_ends)"
        " VALUES ('address', '10.1.0.1', 1, now() + interval '1 minute')"
    )

    await login(app_client, "owner@example.com")
    await login(app_client, "owner@example.com")

    ended = "SELECT count(*) FROM login_attempts WHERE window_ends <= now()"
    assert await db.fetchval(ended) == 50
    assert await db.fetchval("SELECT count(*) FROM login_attempts") == 50 + 3


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "local"),
    ],
)
def test_client_address_is_the_peer_with_ipv6_counted_by_64(peer, key):
    app = web.Application()
    app[SETTINGS] = Settings()
    request = make_mocked_request("POST", LOGIN, app=app).clone(remote=peer)

    assert client_address(request) == key
