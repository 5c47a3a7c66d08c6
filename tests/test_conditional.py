"""Conditional GET: ETags that change with the data, 304s that read nothing, round trips."""

import asyncio

import asyncpg
import pytest

from service.changes import LISTENER_NAME
from service.keys import FEED, STATEMENTS
from tests.conftest import at

PAGE = "/api/v1/prints/?start=0&limit=12&sorting=date_desc"


@pytest.fixture
async def app(client):
    return client.server.app


async def _settled() -> None:
    """Lets the database's announcements and asyncpg's query loggers reach the app."""
    await asyncio.sleep(0.05)


async def _etag(client, path: str, headers: dict) -> str:
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return response.headers["ETag"]


async def _wait_until(predicate, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not hold in time")


async def test_list_answers_with_etag_and_revalidation_headers(client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)

    response = await client.get(PAGE, headers=headers)

    assert response.status == 200, await response.text()
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["Vary"] == "Authorization, Cookie"


async def test_list_with_matching_etag_answers_304_without_body(client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    etag = await _etag(client, PAGE, headers)

    response = await client.get(PAGE, headers={**headers, "If-None-Match": etag})

    assert response.status == 304, await response.text()
    assert await response.read() == b""
    assert response.headers["ETag"] == etag


@pytest.mark.parametrize("form", ["weak", "list", "star"])
async def test_list_if_none_match_forms_answer_304(client, factory, owner, form):
    user_id, headers = owner
    await factory.print(user_id)
    etag = await _etag(client, PAGE, headers)
    header = {"weak": f"W/{etag}", "list": f'"other", {etag}', "star": "*"}[form]

    response = await client.get(PAGE, headers={**headers, "If-None-Match": header})

    assert response.status == 304, await response.text()


async def test_list_etag_differs_between_pages(client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)

    first = await _etag(client, PAGE, headers)
    second = await _etag(client, PAGE.replace("start=0", "start=12"), headers)

    assert first != second


async def test_list_without_sorting_streams_with_etag_and_answers_304(client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    etag = await _etag(client, "/api/v1/prints/", headers)

    response = await client.get("/api/v1/prints/", headers={**headers, "If-None-Match": etag})

    assert response.status == 304, await response.text()


async def _changes_etag(client, headers, change) -> tuple[str, int]:
    """The list's ETag before ``change`` runs, and the status its reuse gets afterwards."""
    etag = await _etag(client, PAGE, headers)
    await change()
    await _settled()
    response = await client.get(PAGE, headers={**headers, "If-None-Match": etag})
    return etag, response.status


async def test_patch_of_verdict_changes_the_list_etag(client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    async def change():
        response = await client.patch(
            f"/api/v1/prints/{print_id}/", json={"alert_overwrite": "FAILED"}, headers=headers
        )
        assert response.status == 200, await response.text()

    _, status = await _changes_etag(client, headers, change)

    assert status == 200


async def test_answer_to_a_frame_changes_the_list_etag(client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    frame = await factory.feedback(print_id)

    async def change():
        body = {"printshotfeedback_set": [{"id": frame, "answer": "LOOKS_OK"}]}
        response = await client.patch(f"/api/v1/prints/{print_id}/", json=body, headers=headers)
        assert response.status == 200, await response.text()

    _, status = await _changes_etag(client, headers, change)

    assert status == 200


async def test_new_print_changes_the_list_etag(client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)

    async def change():
        await factory.print(user_id, started_at=at("2026-03-01T12:00:00"))

    _, status = await _changes_etag(client, headers, change)

    assert status == 200


async def test_soft_delete_changes_the_list_etag(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    async def change():
        await db.execute("UPDATE prints SET deleted_at = now() WHERE id = $1", print_id)

    _, status = await _changes_etag(client, headers, change)

    assert status == 200


async def test_change_of_another_user_keeps_the_list_etag(client, factory, owner, stranger):
    user_id, headers = owner
    await factory.print(user_id)

    async def change():
        await factory.print(stranger[0])

    _, status = await _changes_etag(client, headers, change)

    assert status == 304


async def test_detail_with_matching_etag_answers_304(client, factory, owner):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    etag = await _etag(client, path, headers)

    response = await client.get(path, headers={**headers, "If-None-Match": etag})

    assert response.status == 304, await response.text()
    assert response.headers["ETag"] == etag


async def test_detail_etag_changes_with_the_print(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    path = f"/api/v1/prints/{print_id}/"
    etag = await _etag(client, path, headers)
    await db.execute("UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1", print_id)

    response = await client.get(path, headers={**headers, "If-None-Match": etag})

    assert response.status == 200, await response.text()
    assert (await response.json())["alert_overwrite"] == "FAILED"


async def test_etag_of_one_user_does_not_match_for_another(client, factory, owner, stranger):
    await factory.print(owner[0])
    await factory.print(stranger[0])
    etag = await _etag(client, PAGE, owner[1])

    response = await client.get(PAGE, headers={**stranger[1], "If-None-Match": etag})

    assert response.status == 200, await response.text()


# Round trips: each statement on a pooled connection is one.


async def _statements(app, client, path: str, headers: dict) -> tuple[int, int]:
    """The status of one request to ``path`` and the statements it ran."""
    await _settled()
    before = app[STATEMENTS].count
    response = await client.get(path, headers=headers)
    await response.read()
    await _settled()
    return response.status, app[STATEMENTS].count - before


async def test_list_page_after_a_change_takes_one_round_trip(app, client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    await _etag(client, PAGE, headers)
    await factory.print(user_id)

    status, statements = await _statements(app, client, PAGE, headers)

    assert (status, statements) == (200, 1)


async def test_polled_unchanged_list_page_answers_without_round_trip(app, client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    await _etag(client, PAGE, headers)

    status, statements = await _statements(app, client, PAGE, headers)

    assert (status, statements) == (200, 0)


async def test_detail_after_a_change_takes_one_round_trip(app, client, factory, owner):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    await _etag(client, PAGE, headers)
    await _etag(client, path, headers)
    await factory.print(user_id)

    status, statements = await _statements(app, client, path, headers)

    assert (status, statements) == (200, 1)


async def test_polled_unchanged_detail_answers_without_round_trip(app, client, factory, owner):
    user_id, headers = owner
    path = f"/api/v1/prints/{await factory.print(user_id)}/"
    await _etag(client, PAGE, headers)
    await _etag(client, path, headers)

    status, statements = await _statements(app, client, path, headers)

    assert (status, statements) == (200, 0)


async def test_polled_unchanged_list_answers_304_without_round_trip(app, client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id)
    etag = await _etag(client, PAGE, headers)

    status, statements = await _statements(app, client, PAGE, {**headers, "If-None-Match": etag})

    assert (status, statements) == (304, 0)


async def test_revoked_token_is_refused_once_the_announcement_arrives(client, db, owner):
    _, headers = owner
    await _etag(client, PAGE, headers)
    await db.execute("UPDATE api_tokens SET revoked_at = now()")
    await _settled()

    response = await client.get(PAGE, headers=headers)

    assert response.status == 401, await response.text()


async def test_lost_listener_never_answers_304_for_changed_data(app, client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    etag = await _etag(client, PAGE, headers)
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        LISTENER_NAME,
    )
    await _wait_until(lambda: not app[FEED].listening.is_set())
    await db.execute("UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1", print_id)

    response = await client.get(PAGE, headers={**headers, "If-None-Match": etag})

    assert response.status == 200, await response.text()
    assert [item["alert_overwrite"] for item in await response.json()] == ["FAILED"]


async def test_listener_reconnects_by_itself(app, client, db):
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        LISTENER_NAME,
    )
    await _wait_until(lambda: not app[FEED].listening.is_set())

    await _wait_until(app[FEED].listening.is_set)

    assert app[FEED].epoch == 2


async def test_truncate_of_frames_changes_the_list_etag(client, db, factory, owner):
    user_id, headers = owner
    await factory.feedback(await factory.print(user_id))

    async def change():
        await db.execute("TRUNCATE print_shot_feedbacks")

    _, status = await _changes_etag(client, headers, change)

    assert status == 200


async def test_version_waiting_for_another_commit_ends_above_it(database_url, factory, owner):
    user_id, _ = owner
    first, second = await factory.print(user_id), await factory.print(user_id)
    a, b = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    version = "SELECT version FROM user_data_versions WHERE user_id = $1"
    try:
        a_changes, b_changes = a.transaction(), b.transaction()
        await a_changes.start()
        await b_changes.start()
        await a.execute("UPDATE prints SET filename = 'a' WHERE id = $1", first)
        waiting = asyncio.create_task(
            b.execute("UPDATE prints SET filename = 'b' WHERE id = $1", second)
        )
        await asyncio.sleep(0.2)  # b now waits for a's lock on the user's version.
        await a.execute("UPDATE prints SET filename = 'aa' WHERE id = $1", first)
        a_version = await a.fetchval(version, user_id)
        await a_changes.commit()
        await waiting
        b_version = await b.fetchval(version, user_id)
        await b_changes.commit()
    finally:
        await a.close()
        await b.close()

    assert b_version > a_version


async def test_token_expiring_while_remembered_answers_401(client, db, owner):
    _, headers = owner
    await db.execute("UPDATE api_tokens SET expires_at = now() + interval '1 second'")
    await _etag(client, PAGE, headers)
    await asyncio.sleep(1.1)

    response = await client.get(PAGE, headers=headers)

    assert response.status == 401, await response.text()


async def test_truncated_tokens_answer_401_once_announced(client, db, owner):
    _, headers = owner
    await _etag(client, PAGE, headers)
    await db.execute("TRUNCATE api_tokens")
    await _settled()

    response = await client.get(PAGE, headers=headers)

    assert response.status == 401, await response.text()
