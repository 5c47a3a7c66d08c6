"""Slow statements are cut off, changing nothing, and slow requests never hold the whole pool.

Each test holds a row lock in a transaction of its own, so that the service's statements
wait as long as the test wants: no sleeping statement is put into the service.
"""

import asyncio
import contextlib
import time

import asyncpg
import attrs

from service import errors
from service.app import create_app

PRINTS = "/api/v1/prints/"
#: What an answer may take beyond the timeout that ends it, on two busy shared cores.
MARGIN = 1.0


@contextlib.asynccontextmanager
async def row_locked(database_url: str, table: str, row_id: int):
    """Holds a lock on one row, in a transaction of the test's own, for the block's length."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE", row_id)
            yield
    finally:
        await connection.close()


async def stored(db, print_id: int) -> tuple:
    verdict = await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id)
    answers = await db.fetch(
        "SELECT answer, answered_at FROM print_shot_feedbacks WHERE print_id = $1", print_id
    )
    return verdict, [tuple(row) for row in answers]


async def timed_patch(client, print_id: int, body: dict, headers: dict):
    started = time.monotonic()
    response = await client.patch(f"{PRINTS}{print_id}/", json=body, headers=headers)
    return response.status, await response.json(), response.headers, time.monotonic() - started


async def test_patch_waiting_for_a_lock_gives_up_at_the_lock_timeout_and_changes_nothing(
    aiohttp_client, settings, database_url, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    frame = await factory.feedback(print_id)
    impatient = attrs.evolve(settings, lock_timeout=0.3, statement_timeout=10.0)
    client = await aiohttp_client(create_app(impatient))
    # The verdict is written first; the frame, locked by the test, stops the PATCH after it.
    body = {
        "alert_overwrite": "FAILED",
        "printshotfeedback_set": [{"id": frame, "answer": "LOOKS_OK"}],
    }

    async with row_locked(database_url, "print_shot_feedbacks", frame):
        status, answer, response_headers, seconds = await timed_patch(
            client, print_id, body, headers
        )

    assert status == 503, answer
    assert answer == {"detail": errors.LOCKED}
    assert response_headers["Retry-After"] == "5"
    assert 0.3 <= seconds < 0.3 + MARGIN
    assert await stored(db, print_id) == (None, [(None, None)])


async def test_statement_past_the_statement_timeout_is_cancelled_and_changes_nothing(
    aiohttp_client, settings, database_url, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    frame = await factory.feedback(print_id)
    impatient = attrs.evolve(settings, lock_timeout=10.0, statement_timeout=0.3)
    client = await aiohttp_client(create_app(impatient))
    body = {
        "alert_overwrite": "FAILED",
        "printshotfeedback_set": [{"id": frame, "answer": "LOOKS_OK"}],
    }

    async with row_locked(database_url, "print_shot_feedbacks", frame):
        status, answer, response_headers, seconds = await timed_patch(
            client, print_id, body, headers
        )

    assert status == 503, answer
    assert answer == {"detail": errors.TOO_SLOW}
    assert response_headers["Retry-After"] == "5"
    assert 0.3 <= seconds < 0.3 + MARGIN
    assert await stored(db, print_id) == (None, [(None, None)])


async def test_patches_stuck_on_a_lock_leave_connections_for_polled_reads(
    aiohttp_client, settings, database_url, db, factory, owner
):
    user_id, headers = owner
    locked, other = await factory.print(user_id), await factory.print(user_id)
    patient = attrs.evolve(
        settings,
        pool_max_size=4,
        long_request_connections=2,
        acquire_timeout=1.0,
        lock_timeout=10.0,
        statement_timeout=10.0,
    )
    client = await aiohttp_client(create_app(patient))

    async with row_locked(database_url, "prints", locked):
        patches = [
            asyncio.create_task(
                timed_patch(client, locked, {"alert_overwrite": "FAILED"}, headers)
            )
            for _ in range(3)
        ]
        await asyncio.sleep(0.3)  # Two PATCHes wait for the lock, the third for a connection.
        started = time.monotonic()
        listed = await client.get(
            PRINTS, params={"sorting": "date_desc", "limit": "10"}, headers=headers
        )
        read = await client.get(f"{PRINTS}{other}/", headers=headers)
        reads_took = time.monotonic() - started
        listed_ids = [item["id"] for item in await listed.json()]
        read_id = (await read.json())["id"]
        await asyncio.wait_for(asyncio.shield(patches[2]), 1.0 + MARGIN)
    results = await asyncio.wait_for(asyncio.gather(*patches), MARGIN)

    assert (listed.status, read.status) == (200, 200)
    assert (listed_ids, read_id) == ([other, locked], other)
    assert reads_took < 0.5
    assert sorted((status, answer.get("detail")) for status, answer, _, _ in results) == [
        (200, None),
        (200, None),
        (503, errors.LONG_REQUESTS_BUSY),
    ]
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", locked) == (
        "FAILED"
    )


async def test_list_without_limit_shares_the_connections_of_long_requests(
    aiohttp_client, settings, database_url, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    patient = attrs.evolve(
        settings,
        pool_max_size=2,
        long_request_connections=1,
        acquire_timeout=0.5,
        lock_timeout=10.0,
        statement_timeout=10.0,
    )
    client = await aiohttp_client(create_app(patient))

    async with row_locked(database_url, "prints", print_id):
        stuck = asyncio.create_task(
            timed_patch(client, print_id, {"alert_overwrite": "FAILED"}, headers)
        )
        await asyncio.sleep(0.3)  # The PATCH holds the one connection of long requests.
        whole = await client.get(PRINTS, headers=headers)
        paged = await client.get(
            PRINTS, params={"sorting": "date_asc", "limit": "5"}, headers=headers
        )
        whole_answer, paged_answer = await whole.json(), await paged.json()
    status, _, _, _ = await asyncio.wait_for(stuck, MARGIN)

    assert (whole.status, whole_answer) == (503, {"detail": errors.LONG_REQUESTS_BUSY})
    assert paged.status == 200, paged_answer
    assert [item["id"] for item in paged_answer] == [print_id]
    assert status == 200
