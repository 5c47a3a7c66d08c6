"""Answers kept per user and data version: polls of unchanged data read nothing, and a
change, a lost listener, another user or a deletion never gets a kept answer."""

import asyncio

import attrs
import pytest

from service.answers import ENTRY_OVERHEAD, Answer, AnswerCache
from service.app import create_app
from service.changes import LISTENER_NAME, ChangeFeed
from service.keys import FEED, STATEMENTS

PAGE = "/api/v1/prints/?start=0&limit=12&sorting=date_desc"
#: Seconds each data-version announcement takes to reach the app of ``late_client``.
LATE = 0.3


async def _settled() -> None:
    """Lets the database's announcements and asyncpg's query loggers reach the app."""
    await asyncio.sleep(0.05)


async def _get(client, path: str, headers: dict):
    response = await client.get(path, headers=headers)
    return response.status, response.headers, await response.read()


# The cache itself.


def _answer(version: int, body_bytes: int) -> Answer:
    return Answer(version, f'"{version}"', b"x" * body_bytes)


def test_cache_gives_an_answer_only_under_its_own_version():
    cache = AnswerCache(64 * 1000)
    cache.put(1, "page", _answer(7, 10))

    assert (cache.get(1, "page", 8), len(cache), cache.bytes) == (None, 0, 0)


def test_cache_keeps_answers_apart_by_user():
    cache = AnswerCache(64 * 1000)
    cache.put(1, "page", _answer(7, 10))

    assert (cache.get(2, "page", 7), cache.get(1, "page", 7)) == (None, _answer(7, 10))


def test_cache_drops_the_least_recently_used_beyond_its_bytes():
    entry = ENTRY_OVERHEAD + 100
    cache = AnswerCache(64 * entry)
    for user_id in range(64):
        cache.put(user_id, "page", _answer(1, 100))
    cache.get(0, "page", 1)

    cache.put(64, "page", _answer(1, 100))

    assert (len(cache), cache.bytes) == (64, 64 * entry)
    assert cache.get(1, "page", 1) is None
    assert cache.get(0, "page", 1) == _answer(1, 100)


def test_cache_does_not_keep_an_answer_over_a_64th_of_its_bytes():
    cache = AnswerCache(64 * 1000)
    cache.put(1, "page", _answer(1, 1000 - ENTRY_OVERHEAD + 1))

    assert (len(cache), cache.bytes) == (0, 0)


def test_cache_of_no_bytes_keeps_nothing():
    cache = AnswerCache(0)
    cache.put(1, "page", Answer(1, '"1"'))

    assert len(cache) == 0


def test_replacing_an_answer_counts_its_bytes_once():
    cache = AnswerCache(64 * 1000)
    cache.put(1, "page", _answer(1, 10))
    cache.put(1, "page", _answer(2, 20))

    assert (len(cache), cache.bytes) == (1, ENTRY_OVERHEAD + 20)


# Through the app.


async def test_kept_list_page_is_the_first_answer_byte_for_byte(client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    first = await _get(client, PAGE, headers)

    again = await _get(client, PAGE, headers)

    assert again[0] == 200
    assert again[2] == first[2]
    assert {k: again[1][k] for k in ("ETag", "Content-Type", "Cache-Control", "Vary")} == {
        k: first[1][k] for k in ("ETag", "Content-Type", "Cache-Control", "Vary")
    }


async def test_list_page_after_a_change_shows_it(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    await _get(client, PAGE, headers)
    await db.execute("UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1", print_id)
    await _settled()

    response = await client.get(PAGE, headers=headers)

    assert [item["alert_overwrite"] for item in await response.json()] == ["FAILED"]


async def test_lost_listener_never_answers_a_kept_page(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    await _get(client, PAGE, headers)
    app = client.server.app
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        LISTENER_NAME,
    )
    for _ in range(100):
        if not app[FEED].listening.is_set():
            break
        await asyncio.sleep(0.05)
    await db.execute("UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1", print_id)

    response = await client.get(PAGE, headers=headers)

    assert [item["alert_overwrite"] for item in await response.json()] == ["FAILED"]


async def test_kept_detail_is_the_first_answer_byte_for_byte(client, factory, owner):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    await _get(client, PAGE, headers)
    first = await _get(client, path, headers)

    again = await _get(client, path, headers)

    assert (again[0], again[2], again[1]["ETag"]) == (200, first[2], first[1]["ETag"])


async def test_kept_detail_of_a_deleted_print_answers_404(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    path = f"/api/v1/prints/{print_id}/"
    await _get(client, PAGE, headers)
    await _get(client, path, headers)
    await db.execute("UPDATE prints SET deleted_at = now() WHERE id = $1", print_id)
    await _settled()

    response = await client.get(path, headers=headers)

    assert response.status == 404, await response.text()


async def test_kept_detail_is_never_given_to_another_user(client, factory, owner, stranger):
    path = f"/api/v1/prints/{await factory.print(owner[0])}/"
    await _get(client, PAGE, owner[1])
    await _get(client, PAGE, stranger[1])
    await _get(client, path, owner[1])

    response = await client.get(path, headers=stranger[1])

    assert response.status == 404, await response.text()


async def test_detail_after_a_change_of_another_print_keeps_its_etag(client, factory, owner):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    await _get(client, PAGE, headers)
    etag = (await _get(client, path, headers))[1]["ETag"]
    await factory.print(user_id)
    await _settled()

    response = await client.get(path, headers={**headers, "If-None-Match": etag})

    assert response.status == 304, await response.text()


@pytest.fixture
async def uncached_client(aiohttp_client, settings, db):
    """The real app with PRINTAPI_ANSWER_CACHE_BYTES=0: it keeps no answer."""
    return await aiohttp_client(create_app(attrs.evolve(settings, answer_cache_bytes=0)))


async def test_without_kept_answers_a_polled_page_takes_one_round_trip(
    uncached_client, factory, owner
):
    user_id, headers = owner
    await factory.print(user_id)
    await _get(uncached_client, PAGE, headers)
    app = uncached_client.server.app
    await _settled()
    before = app[STATEMENTS].count

    status = (await _get(uncached_client, PAGE, headers))[0]
    await _settled()

    assert (status, app[STATEMENTS].count - before) == (200, 1)


# A client's own change, and announcements that come late, as from a busy database.


@pytest.fixture
async def late_client(aiohttp_client, settings, db, monkeypatch):
    """The real app whose change feed reads each data-version announcement LATE seconds
    after the database sends it; tokens' announcements are not delayed."""
    on_change = ChangeFeed._on_change

    def late(self, *args):
        asyncio.get_running_loop().call_later(LATE, on_change, self, *args)

    monkeypatch.setattr(ChangeFeed, "_on_change", late)
    client = await aiohttp_client(create_app(settings))
    yield client
    await asyncio.sleep(LATE + 0.1)  # No announcement left to land after the test.


async def test_detail_after_own_patch_shows_it_before_the_announcement(
    late_client, factory, owner
):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    await _get(late_client, PAGE, headers)
    await _get(late_client, path, headers)
    await late_client.patch(path, json={"alert_overwrite": "FAILED"}, headers=headers)

    response = await late_client.get(path, headers=headers)

    assert (await response.json())["alert_overwrite"] == "FAILED"


async def test_page_after_own_patch_shows_it_before_the_announcement(late_client, factory, owner):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    await _get(late_client, PAGE, headers)
    await late_client.patch(path, json={"alert_overwrite": "FAILED"}, headers=headers)

    response = await late_client.get(PAGE, headers=headers)

    assert [item["alert_overwrite"] for item in await response.json()] == ["FAILED"]


async def test_gets_racing_patches_leave_nothing_stale_once_announced(client, factory, owner):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    seen = []
    for round_ in range(30):
        value = ("FAILED", "NOT_FAILED")[round_ % 2]
        gets = [client.get(p, headers=headers) for p in (PAGE, path) * 5]
        patch = client.patch(path, json={"alert_overwrite": value}, headers=headers)
        for response in await asyncio.gather(*gets, patch):
            await response.read()
        await _settled()

        detail = await (await client.get(path, headers=headers)).json()
        page = await (await client.get(PAGE, headers=headers)).json()
        seen.append((detail["alert_overwrite"], page[0]["alert_overwrite"]))

    assert seen == [(value, value) for value in ("FAILED", "NOT_FAILED") * 15]


async def test_new_user_with_a_reused_id_never_gets_the_old_users_answers(
    client, db, factory, owner
):
    old_id, headers = owner
    print_id = await factory.print(old_id, filename="old-user.gcode")
    path = f"/api/v1/prints/{print_id}/"
    await _get(client, PAGE, headers)
    await _get(client, path, headers)
    await db.execute(
        "TRUNCATE users, api_tokens, printers, prints, print_shot_feedbacks"
        " RESTART IDENTITY CASCADE"
    )
    new_id = await factory.user("newcomer@example.com")
    new_headers = {"Authorization": f"Bearer {await factory.token(new_id)}"}
    await _settled()

    page = await client.get(PAGE, headers=new_headers)
    detail = await client.get(path, headers=new_headers)

    assert (new_id, page.status, await page.json(), detail.status) == (old_id, 200, [], 404)


async def test_refresh_after_a_restore_that_put_versions_back_shows_the_change(
    client, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    await _get(client, PAGE, headers)
    # As a restore does: the sequence goes back to a value from before, and a change then
    # draws a version lower than the one the worker holds.
    await db.execute("SELECT setval('data_version_seq', 1)")
    await db.execute("UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1", print_id)
    await _settled()
    stale = await (await client.get(PAGE, headers=headers)).json()

    await db.execute("SELECT refresh_data_versions()")
    await _settled()
    response = await client.get(PAGE, headers=headers)

    assert [item["alert_overwrite"] for item in stale] == [None]
    assert [item["alert_overwrite"] for item in await response.json()] == ["FAILED"]
