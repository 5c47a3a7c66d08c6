"""The requests Obico's web client makes, unchanged, against the demo data."""

import pytest

from service.demo import DEMO_EMAIL, demo_document
from service.queries import Queries
from service.transfer import import_document

PAGE = "/api/v1/prints/?start={start}&limit=12&sorting=date_desc"


@pytest.fixture
async def demo(db, factory):
    """The demo history (3,000 prints) and request headers with a token of the demo user."""
    await import_document(db, Queries(), demo_document(print_count=3000, seed=7))
    user_id = await db.fetchval("SELECT id FROM users WHERE email = $1", DEMO_EMAIL)
    token = await factory.token(user_id)
    return user_id, {"Authorization": f"Bearer {token}"}


async def test_pages_of_twelve_follow_each_other_without_gap_or_repeat(client, db, demo):
    user_id, headers = demo
    expected = await db.fetch(
        "SELECT id FROM prints WHERE user_id = $1 AND deleted_at IS NULL"
        " ORDER BY started_at DESC NULLS LAST, id DESC LIMIT 60",
        user_id,
    )

    seen = []
    for start in range(0, 60, 12):
        response = await client.get(PAGE.format(start=start), headers=headers)
        assert response.status == 200, await response.text()
        seen += [item["id"] for item in await response.json()]

    assert seen == [row["id"] for row in expected]


async def test_detail_patch_verdict_and_answer_a_frame(client, demo):
    _, headers = demo
    listed = await client.get(
        "/api/v1/prints/?filter=need_print_shot_feedback&sorting=date_desc&start=0&limit=1",
        headers=headers,
    )
    waiting = (await listed.json())[0]
    path = f"/api/v1/prints/{waiting['id']}/"
    frame = waiting["printshotfeedback_set"][0]["id"]

    detail = await client.get(path, headers=headers)
    verdict = await client.patch(path, json={"alert_overwrite": "NOT_FAILED"}, headers=headers)
    answer = await client.patch(
        path,
        json={"printshotfeedback_set": [{"id": frame, "answer": "LOOKS_OK"}]},
        headers=headers,
    )
    after = await client.get(
        "/api/v1/prints/?filter=need_print_shot_feedback&sorting=date_desc", headers=headers
    )

    assert detail.status == 200, await detail.text()
    assert await detail.json() == waiting
    assert verdict.status == 200, await verdict.text()
    assert (await verdict.json())["alert_overwrite"] == "NOT_FAILED"
    assert answer.status == 200, await answer.text()
    shots = (await answer.json())["printshotfeedback_set"]
    assert [shot["answer"] for shot in shots if shot["id"] == frame] == ["LOOKS_OK"]
    assert waiting["id"] not in [item["id"] for item in await after.json()]
