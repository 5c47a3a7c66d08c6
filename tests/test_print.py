"""One print: GET on both spellings of its URL, and PATCH of the verdict and frame answers."""

import copy
import datetime

import pytest

from tests.conftest import at

NOT_FOUND = {"detail": "Not found."}
#: Every URL form of one print: plural and singular, with and without the trailing slash.
PRINT_PATHS = (
    "/api/v1/prints/{}/",
    "/api/v1/prints/{}",
    "/api/v1/print/{}/",
    "/api/v1/print/{}",
)
#: Past the range of bigint, the type of every id.
BEYOND_BIGINT = 2**63


def url(print_id) -> str:
    return f"/api/v1/prints/{print_id}/"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def parse_timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


async def print_row(db, print_id: int):
    return await db.fetchrow(
        "SELECT alert_overwrite, filename, started_at, updated_at, deleted_at, user_id"
        " FROM prints WHERE id = $1",
        print_id,
    )


async def feedback_rows(db, print_id: int) -> list[tuple]:
    rows = await db.fetch(
        "SELECT id, answer, answered_at FROM print_shot_feedbacks WHERE print_id = $1 ORDER BY id",
        print_id,
    )
    return [tuple(row) for row in rows]


@pytest.fixture
async def own_print(factory, owner):
    """A live print of the owner, last changed long ago, with three unanswered frames."""
    user_id, _ = owner
    print_id = await factory.print(user_id, updated_at=at("2026-01-01T00:00:00"))
    for _ in range(3):
        await factory.feedback(print_id)
    return print_id


@pytest.fixture
async def other_print(factory, owner):
    """Another live print of the owner, with one unanswered frame."""
    user_id, _ = owner
    print_id = await factory.print(user_id, filename="other.gcode")
    await factory.feedback(print_id)
    return print_id


@pytest.fixture
async def foreign_print(factory, stranger):
    """A live print of the stranger, with one unanswered frame."""
    user_id, _ = stranger
    print_id = await factory.print(user_id, filename="secret.gcode")
    await factory.feedback(print_id)
    return print_id


async def _not_found_target(kind: str, factory, owner, stranger) -> int:
    """A print id the owner may not see: a missing, soft-deleted or other user's print."""
    if kind == "missing":
        return 1_000_000
    if kind == "deleted":
        return await factory.print(owner[0], deleted_at=at("2026-03-02T00:00:00"))
    return await factory.print(stranger[0])


# GET


@pytest.mark.parametrize("path", PRINT_PATHS)
async def test_get_own_print_on_each_path_returns_exact_print(client, factory, owner, path):
    user_id, headers = owner
    printer_id = await factory.printer(user_id)
    print_id = await factory.print(
        user_id,
        printer_id=printer_id,
        filename="benchy.gcode",
        started_at=at("2026-03-01T12:00:00.250000"),
        finished_at=at("2026-03-01T13:00:00"),
        cancelled_at=at("2026-03-01T13:01:00"),
        uploaded_at=at("2026-03-01T13:02:00"),
        alerted_at=at("2026-03-01T12:30:00"),
        alert_acknowledged_at=at("2026-03-01T12:31:00"),
        alert_muted_at=at("2026-03-01T12:32:00"),
        paused_at=at("2026-03-01T12:33:00"),
        video_url="https://example.com/v.mp4",
        tagged_video_url="https://example.com/t.mp4",
        poster_url="https://example.com/p.jpg",
        prediction_json_url="https://example.com/p.json",
        alert_overwrite="NOT_FAILED",
    )
    first = await factory.feedback(
        print_id, "LOOKS_BAD", at("2026-03-01T14:00:00"), "https://example.com/1.jpg"
    )
    second = await factory.feedback(print_id, image_url="https://example.com/2.jpg")

    response = await client.get(path.format(print_id), headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == {
        "id": print_id,
        "printer": printer_id,
        "filename": "benchy.gcode",
        "started_at": "2026-03-01T12:00:00.250000Z",
        "finished_at": "2026-03-01T13:00:00.000000Z",
        "cancelled_at": "2026-03-01T13:01:00.000000Z",
        "uploaded_at": "2026-03-01T13:02:00.000000Z",
        "alerted_at": "2026-03-01T12:30:00.000000Z",
        "alert_acknowledged_at": "2026-03-01T12:31:00.000000Z",
        "alert_muted_at": "2026-03-01T12:32:00.000000Z",
        "paused_at": "2026-03-01T12:33:00.000000Z",
        "video_url": "https://example.com/v.mp4",
        "tagged_video_url": "https://example.com/t.mp4",
        "poster_url": "https://example.com/p.jpg",
        "prediction_json_url": "https://example.com/p.json",
        "alert_overwrite": "NOT_FAILED",
        "printshotfeedback_set": [
            {
                "id": first,
                "print_id": print_id,
                "image_url": "https://example.com/1.jpg",
                "answer": "LOOKS_BAD",
                "answered_at": "2026-03-01T14:00:00.000000Z",
            },
            {
                "id": second,
                "print_id": print_id,
                "image_url": "https://example.com/2.jpg",
                "answer": None,
                "answered_at": None,
            },
        ],
    }


async def test_get_bare_print_returns_nulls_and_no_feedbacks(client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id, filename="cube.gcode")

    response = await client.get(url(print_id), headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == {
        "id": print_id,
        "printer": None,
        "filename": "cube.gcode",
        "started_at": None,
        "finished_at": None,
        "cancelled_at": None,
        "uploaded_at": None,
        "alerted_at": None,
        "alert_acknowledged_at": None,
        "alert_muted_at": None,
        "paused_at": None,
        "video_url": None,
        "tagged_video_url": None,
        "poster_url": None,
        "prediction_json_url": None,
        "alert_overwrite": None,
        "printshotfeedback_set": [],
    }


async def test_get_feedbacks_are_ordered_by_id(client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    ids = [
        await factory.feedback(print_id, image_url=f"https://example.com/{n}.jpg")
        for n in range(5)
    ]
    # An updated row moves to the end of the table: only an ORDER BY keeps it first.
    await factory.connection.execute(
        "UPDATE print_shot_feedbacks SET image_url = image_url || '?' WHERE id = $1", ids[0]
    )

    response = await client.get(url(print_id), headers=headers)

    assert response.status == 200, await response.text()
    assert [item["id"] for item in (await response.json())["printshotfeedback_set"]] == ids


@pytest.mark.parametrize("path", [PRINT_PATHS[0], PRINT_PATHS[2]])
@pytest.mark.parametrize(
    "make_id",
    [
        pytest.param(lambda i: "0", id="zero"),
        pytest.param(lambda i: f"-{i}", id="negative"),
        pytest.param(lambda i: "abc", id="letters"),
        pytest.param(lambda i: f"{i}abc", id="digits-then-letters"),
        pytest.param(lambda i: f"{i}.5", id="fraction"),
        pytest.param(lambda i: f"{i}.0", id="decimal-point"),
        pytest.param(lambda i: f"0{i}", id="leading-zero"),
        pytest.param(lambda i: f"+{i}", id="plus-sign"),
        pytest.param(lambda i: f" {i}", id="leading-space"),
        pytest.param(lambda i: f"{i}e0", id="exponent"),
        pytest.param(lambda i: "".join(chr(0x660 + int(d)) for d in str(i)), id="arabic-digits"),
        pytest.param(lambda i: "".join(chr(0xFF10 + int(d)) for d in str(i)), id="fullwidth"),
        pytest.param(lambda i: str(BEYOND_BIGINT), id="bigint-max-plus-one"),
        pytest.param(lambda i: "99999999999999999999", id="twenty-nines"),
    ],
)
async def test_get_malformed_id_returns_not_found(client, factory, owner, path, make_id):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    response = await client.get(path.format(make_id(print_id)), headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND


async def test_get_largest_bigint_id_of_missing_print_returns_not_found(client, owner):
    _, headers = owner

    response = await client.get(url(BEYOND_BIGINT - 1), headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND


@pytest.mark.parametrize("path", PRINT_PATHS)
@pytest.mark.parametrize("kind", ["missing", "deleted", "foreign"])
async def test_get_print_not_visible_returns_not_found(
    client, factory, owner, stranger, kind, path
):
    print_id = await _not_found_target(kind, factory, owner, stranger)

    response = await client.get(path.format(print_id), headers=owner[1])

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND


async def test_get_missing_deleted_and_foreign_prints_answer_identical_bytes(
    client, factory, owner, stranger
):
    targets = [
        await _not_found_target(kind, factory, owner, stranger)
        for kind in ("missing", "deleted", "foreign")
    ]

    responses = [await client.get(url(target), headers=owner[1]) for target in targets]

    for response in responses:
        assert response.status == 404, await response.text()
    assert {await response.read() for response in responses} == {b'{"detail":"Not found."}'}
    assert {response.headers["Content-Type"] for response in responses} == {
        "application/json; charset=utf-8"
    }


async def test_get_foreign_print_is_visible_to_its_owner(client, stranger, foreign_print):
    response = await client.get(url(foreign_print), headers=stranger[1])

    assert response.status == 200, await response.text()
    assert (await response.json())["filename"] == "secret.gcode"


# PATCH alert_overwrite


@pytest.mark.parametrize("verdict", ["FAILED", "NOT_FAILED", None])
async def test_patch_alert_overwrite_returns_updated_print(client, db, owner, own_print, verdict):
    _, headers = owner
    await db.execute("UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1", own_print)
    before = await (await client.get(url(own_print), headers=headers)).json()

    response = await client.patch(
        url(own_print), json={"alert_overwrite": verdict}, headers=headers
    )

    assert response.status == 200, await response.text()
    assert await response.json() == {**before, "alert_overwrite": verdict}

    assert (await print_row(db, own_print))["alert_overwrite"] == verdict


@pytest.mark.parametrize("path", PRINT_PATHS)
async def test_patch_on_each_path_sets_alert_overwrite(client, db, owner, own_print, path):
    _, headers = owner

    response = await client.patch(
        path.format(own_print), json={"alert_overwrite": "FAILED"}, headers=headers
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["alert_overwrite"] == "FAILED"

    assert (await print_row(db, own_print))["alert_overwrite"] == "FAILED"


async def test_patch_alert_overwrite_moves_updated_at_to_request_time(
    client, db, owner, own_print
):
    _, headers = owner

    sent = now()
    response = await client.patch(
        url(own_print), json={"alert_overwrite": "FAILED"}, headers=headers
    )
    answered = now()

    assert response.status == 200, await response.text()

    assert sent <= (await print_row(db, own_print))["updated_at"] <= answered


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("failed", '"failed"'),
        (1, "1"),
        (True, "true"),
        ("", '""'),
        (["FAILED"], '["FAILED"]'),
        ({"value": "FAILED"}, '{"value":"FAILED"}'),
        ("FAILED" * 10, '"' + "FAILED" * 6 + "..."),
    ],
)
async def test_patch_invalid_alert_overwrite_returns_400_and_changes_nothing(
    client, db, owner, own_print, value, shown
):
    _, headers = owner

    response = await client.patch(url(own_print), json={"alert_overwrite": value}, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "alert_overwrite": [f"{shown} is not a valid choice; use FAILED, NOT_FAILED or null."]
    }

    row = await print_row(db, own_print)
    assert (row["alert_overwrite"], row["updated_at"]) == (None, at("2026-01-01T00:00:00"))


# PATCH printshotfeedback_set


async def test_patch_answers_sets_each_listed_answer(client, db, owner, own_print):
    _, headers = owner
    first, second, third = [row[0] for row in await feedback_rows(db, own_print)]
    body = {
        "printshotfeedback_set": [
            {"id": first, "answer": "LOOKS_BAD"},
            {"id": second, "answer": "LOOKS_OK"},
            {"id": third, "answer": "UNANSWERED"},
        ]
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 200, await response.text()
    feedbacks = (await response.json())["printshotfeedback_set"]
    assert [(item["id"], item["answer"]) for item in feedbacks] == [
        (first, "LOOKS_BAD"),
        (second, "LOOKS_OK"),
        (third, "UNANSWERED"),
    ]

    rows = await feedback_rows(db, own_print)
    assert [(row[0], row[1]) for row in rows] == [
        (first, "LOOKS_BAD"),
        (second, "LOOKS_OK"),
        (third, "UNANSWERED"),
    ]


@pytest.mark.parametrize("answer", ["LOOKS_BAD", "LOOKS_OK", "UNANSWERED"])
async def test_patch_answer_stamps_answered_at_with_request_time(
    client, db, owner, own_print, answer
):
    _, headers = owner
    feedback_id = (await feedback_rows(db, own_print))[0][0]
    body = {"printshotfeedback_set": [{"id": feedback_id, "answer": answer}]}

    sent = now()
    response = await client.patch(url(own_print), json=body, headers=headers)
    answered = now()

    assert response.status == 200, await response.text()
    item = (await response.json())["printshotfeedback_set"][0]
    assert item["answer"] == answer
    assert sent <= parse_timestamp(item["answered_at"]) <= answered
    assert item["answered_at"].endswith("Z")

    row = (await feedback_rows(db, own_print))[0]
    assert row[1] == answer
    assert row[2] == parse_timestamp(item["answered_at"])


async def test_patch_null_answer_clears_answer_and_answered_at(
    client, db, factory, owner, own_print
):
    _, headers = owner
    feedback_id = await factory.feedback(own_print, "LOOKS_OK", at("2026-03-01T12:00:00"))
    body = {"printshotfeedback_set": [{"id": feedback_id, "answer": None}]}

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 200, await response.text()
    item = (await response.json())["printshotfeedback_set"][-1]
    assert (item["id"], item["answer"], item["answered_at"]) == (feedback_id, None, None)

    assert (await feedback_rows(db, own_print))[-1] == (feedback_id, None, None)


async def test_patch_same_answer_again_keeps_answered_at(client, db, factory, owner, own_print):
    _, headers = owner
    feedback_id = await factory.feedback(own_print, "LOOKS_OK", at("2026-03-01T12:00:00"))
    body = {"printshotfeedback_set": [{"id": feedback_id, "answer": "LOOKS_OK"}]}

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 200, await response.text()
    item = (await response.json())["printshotfeedback_set"][-1]
    assert (item["answer"], item["answered_at"]) == ("LOOKS_OK", "2026-03-01T12:00:00.000000Z")

    row = (await feedback_rows(db, own_print))[-1]
    assert row == (feedback_id, "LOOKS_OK", at("2026-03-01T12:00:00"))


async def test_patch_same_answer_without_time_stamps_request_time(
    client, db, factory, owner, own_print
):
    _, headers = owner
    feedback_id = await factory.feedback(own_print, "LOOKS_OK", answered_at=None)
    body = {"printshotfeedback_set": [{"id": feedback_id, "answer": "LOOKS_OK"}]}

    sent = now()
    response = await client.patch(url(own_print), json=body, headers=headers)
    answered = now()

    assert response.status == 200, await response.text()
    item = (await response.json())["printshotfeedback_set"][-1]
    assert sent <= parse_timestamp(item["answered_at"]) <= answered

    assert sent <= (await feedback_rows(db, own_print))[-1][2] <= answered


async def test_patch_changed_answer_moves_answered_at(client, db, factory, owner, own_print):
    _, headers = owner
    feedback_id = await factory.feedback(own_print, "LOOKS_OK", at("2026-03-01T12:00:00"))
    body = {"printshotfeedback_set": [{"id": feedback_id, "answer": "LOOKS_BAD"}]}

    sent = now()
    response = await client.patch(url(own_print), json=body, headers=headers)
    answered = now()

    assert response.status == 200, await response.text()
    item = (await response.json())["printshotfeedback_set"][-1]
    assert item["answer"] == "LOOKS_BAD"
    assert sent <= parse_timestamp(item["answered_at"]) <= answered

    row = (await feedback_rows(db, own_print))[-1]
    assert row[1] == "LOOKS_BAD"
    assert sent <= row[2] <= answered


async def test_patch_answers_keeps_unlisted_feedbacks(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    bad = await factory.feedback(print_id, "LOOKS_BAD", at("2026-03-01T12:00:00"))
    listed = await factory.feedback(print_id)
    undecided = await factory.feedback(print_id, "UNANSWERED", at("2026-03-01T12:05:00"))
    blank = await factory.feedback(print_id)
    body = {"printshotfeedback_set": [{"id": listed, "answer": "LOOKS_OK"}]}

    response = await client.patch(url(print_id), json=body, headers=headers)

    assert response.status == 200, await response.text()
    feedbacks = (await response.json())["printshotfeedback_set"]
    assert [(item["id"], item["answer"]) for item in feedbacks] == [
        (bad, "LOOKS_BAD"),
        (listed, "LOOKS_OK"),
        (undecided, "UNANSWERED"),
        (blank, None),
    ]

    rows = await feedback_rows(db, print_id)
    assert [rows[0], rows[2], rows[3]] == [
        (bad, "LOOKS_BAD", at("2026-03-01T12:00:00")),
        (undecided, "UNANSWERED", at("2026-03-01T12:05:00")),
        (blank, None, None),
    ]


async def test_patch_answers_moves_print_updated_at(client, db, owner, own_print):
    _, headers = owner
    feedback_id = (await feedback_rows(db, own_print))[0][0]
    body = {"printshotfeedback_set": [{"id": feedback_id, "answer": "LOOKS_OK"}]}

    sent = now()
    response = await client.patch(url(own_print), json=body, headers=headers)
    answered = now()

    assert response.status == 200, await response.text()

    assert sent <= (await print_row(db, own_print))["updated_at"] <= answered


async def test_patch_empty_feedback_list_changes_nothing(client, db, owner, own_print):
    _, headers = owner
    feedbacks_before = await feedback_rows(db, own_print)

    response = await client.patch(
        url(own_print), json={"printshotfeedback_set": []}, headers=headers
    )

    assert response.status == 200, await response.text()
    assert [item["answer"] for item in (await response.json())["printshotfeedback_set"]] == [
        None,
        None,
        None,
    ]

    assert await feedback_rows(db, own_print) == feedbacks_before
    assert (await print_row(db, own_print))["updated_at"] == at("2026-01-01T00:00:00")


async def _assert_nothing_applied(db, print_ids: list[int], feedbacks_before: dict) -> None:
    for print_id in print_ids:
        row = await print_row(db, print_id)
        assert row["alert_overwrite"] is None
        assert await feedback_rows(db, print_id) == feedbacks_before[print_id]


async def test_patch_feedback_of_other_own_print_returns_400_and_applies_nothing(
    client, db, owner, own_print, other_print
):
    _, headers = owner
    own_feedback = (await feedback_rows(db, own_print))[0][0]
    other_feedback = (await feedback_rows(db, other_print))[0][0]
    before = {p: await feedback_rows(db, p) for p in (own_print, other_print)}
    body = {
        "alert_overwrite": "FAILED",
        "printshotfeedback_set": [
            {"id": own_feedback, "answer": "LOOKS_OK"},
            {"id": other_feedback, "answer": "LOOKS_BAD"},
        ],
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": [f"{other_feedback} is not the id of a feedback of this print."]
    }

    await _assert_nothing_applied(db, [own_print, other_print], before)
    assert (await print_row(db, own_print))["updated_at"] == at("2026-01-01T00:00:00")


async def test_patch_feedback_of_foreign_print_returns_400_and_applies_nothing(
    client, db, owner, own_print, foreign_print
):
    _, headers = owner
    own_feedback = (await feedback_rows(db, own_print))[0][0]
    foreign_feedback = (await feedback_rows(db, foreign_print))[0][0]
    before = {p: await feedback_rows(db, p) for p in (own_print, foreign_print)}
    body = {
        "alert_overwrite": "FAILED",
        "printshotfeedback_set": [
            {"id": own_feedback, "answer": "LOOKS_OK"},
            {"id": foreign_feedback, "answer": "LOOKS_BAD"},
        ],
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": [f"{foreign_feedback} is not the id of a feedback of this print."]
    }

    await _assert_nothing_applied(db, [own_print, foreign_print], before)
    assert (await print_row(db, own_print))["updated_at"] == at("2026-01-01T00:00:00")


async def test_patch_missing_feedback_id_returns_400_and_applies_nothing(
    client, db, owner, own_print
):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}
    body = {
        "alert_overwrite": "NOT_FAILED",
        "printshotfeedback_set": [
            {"id": before[own_print][0][0], "answer": "LOOKS_OK"},
            {"id": 1_000_000, "answer": "LOOKS_OK"},
            {"id": 999_999, "answer": None},
        ],
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": [
            "999999 is not the id of a feedback of this print.",
            "1000000 is not the id of a feedback of this print.",
        ]
    }

    await _assert_nothing_applied(db, [own_print], before)


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ("looks_ok", '"looks_ok"'),
        (1, "1"),
        (True, "true"),
        ("", '""'),
        ({}, "{}"),
        (["LOOKS_OK"], '["LOOKS_OK"]'),
    ],
)
async def test_patch_invalid_answer_returns_400_and_applies_nothing(
    client, db, owner, own_print, answer, shown
):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}
    first, second, _ = [row[0] for row in before[own_print]]
    body = {
        "alert_overwrite": "FAILED",
        "printshotfeedback_set": [
            {"id": first, "answer": "LOOKS_OK"},
            {"id": second, "answer": answer},
        ],
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": [
            f"Item 1: {shown} is not a valid answer; use LOOKS_BAD, LOOKS_OK, UNANSWERED or null."
        ]
    }

    await _assert_nothing_applied(db, [own_print], before)


async def test_patch_duplicate_feedback_ids_returns_400_and_applies_nothing(
    client, db, owner, own_print
):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}
    feedback_id = before[own_print][0][0]
    body = {
        "printshotfeedback_set": [
            {"id": feedback_id, "answer": "LOOKS_OK"},
            {"id": feedback_id, "answer": "LOOKS_BAD"},
        ]
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": [f"Item 1: feedback {feedback_id} is listed twice."]
    }

    await _assert_nothing_applied(db, [own_print], before)


@pytest.mark.parametrize(
    ("first", "problem"),
    [
        pytest.param({}, "answer is required.", id="no-answer"),
        pytest.param(
            {"answer": "maybe"},
            '"maybe" is not a valid answer; use LOOKS_BAD, LOOKS_OK, UNANSWERED or null.',
            id="bad-answer",
        ),
    ],
)
async def test_patch_feedback_listed_again_after_a_bad_item_is_reported_too(
    client, db, owner, own_print, first, problem
):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}
    feedback_id = before[own_print][0][0]
    body = {
        "printshotfeedback_set": [
            {"id": feedback_id, **first},
            {"id": feedback_id, "answer": "LOOKS_OK"},
        ]
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": [
            f"Item 0: {problem}",
            f"Item 1: feedback {feedback_id} is listed twice.",
        ]
    }

    await _assert_nothing_applied(db, [own_print], before)


@pytest.mark.parametrize("value", [{"id": 1, "answer": "LOOKS_OK"}, "LOOKS_OK", 3, None])
async def test_patch_feedback_set_not_list_returns_400_and_applies_nothing(
    client, db, owner, own_print, value
):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}
    body = {"alert_overwrite": "FAILED", "printshotfeedback_set": value}

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": ['Must be a list of {"id": ..., "answer": ...} objects.']
    }

    await _assert_nothing_applied(db, [own_print], before)


async def test_patch_feedback_without_answer_returns_400_and_applies_nothing(
    client, db, owner, own_print
):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}
    first, second, _ = [row[0] for row in before[own_print]]
    body = {"printshotfeedback_set": [{"id": first, "answer": "LOOKS_OK"}, {"id": second}]}

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {"printshotfeedback_set": ["Item 1: answer is required."]}

    await _assert_nothing_applied(db, [own_print], before)


@pytest.mark.parametrize(
    "item",
    [
        pytest.param({"answer": "LOOKS_OK"}, id="no-id"),
        pytest.param({"id": None, "answer": "LOOKS_OK"}, id="null"),
        pytest.param({"id": "1", "answer": "LOOKS_OK"}, id="string"),
        pytest.param({"id": 1.0, "answer": "LOOKS_OK"}, id="float"),
        pytest.param({"id": True, "answer": "LOOKS_OK"}, id="boolean"),
        pytest.param({"id": 0, "answer": "LOOKS_OK"}, id="zero"),
        pytest.param({"id": -1, "answer": "LOOKS_OK"}, id="negative"),
        pytest.param({"id": BEYOND_BIGINT, "answer": "LOOKS_OK"}, id="beyond-bigint"),
    ],
)
async def test_patch_feedback_with_bad_id_returns_400_and_applies_nothing(
    client, db, owner, own_print, item
):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}

    response = await client.patch(
        url(own_print), json={"printshotfeedback_set": [item]}, headers=headers
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": ["Item 0: id must be the id of a feedback of this print."]
    }

    await _assert_nothing_applied(db, [own_print], before)


@pytest.mark.parametrize("item", ["LOOKS_OK", 5, None, []])
async def test_patch_feedback_item_not_object_returns_400(client, db, owner, own_print, item):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}

    response = await client.patch(
        url(own_print), json={"printshotfeedback_set": [item]}, headers=headers
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": ["Item 0: must be an object with id and answer."]
    }

    await _assert_nothing_applied(db, [own_print], before)


async def test_patch_feedback_item_with_unknown_key_returns_400(client, db, owner, own_print):
    _, headers = owner
    before = {own_print: await feedback_rows(db, own_print)}
    feedback_id = before[own_print][0][0]
    item = {"id": feedback_id, "answer": "LOOKS_OK", "verdict": "x", "colour": "red"}

    response = await client.patch(
        url(own_print), json={"printshotfeedback_set": [item]}, headers=headers
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "printshotfeedback_set": ["Item 0: colour, verdict is not a field of a feedback."]
    }

    await _assert_nothing_applied(db, [own_print], before)


# PATCH bodies


async def test_patch_whole_print_with_new_verdict_applies_only_verdict(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(
        user_id, started_at=at("2026-03-01T12:00:00"), video_url="https://example.com/v.mp4"
    )
    await factory.feedback(print_id, "LOOKS_BAD", at("2026-03-01T13:00:00"))
    await factory.feedback(print_id)
    received = await (await client.get(url(print_id), headers=headers)).json()
    feedbacks_before = await feedback_rows(db, print_id)

    response = await client.patch(
        url(print_id), json={**received, "alert_overwrite": "FAILED"}, headers=headers
    )

    assert response.status == 200, await response.text()
    assert await response.json() == {**received, "alert_overwrite": "FAILED"}

    assert (await print_row(db, print_id))["alert_overwrite"] == "FAILED"
    assert await feedback_rows(db, print_id) == feedbacks_before


async def test_patch_whole_print_with_new_answer_applies_only_answer(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id, alert_overwrite="NOT_FAILED")
    bad = await factory.feedback(print_id, "LOOKS_BAD", at("2026-03-01T13:00:00"))
    await factory.feedback(print_id)
    received = await (await client.get(url(print_id), headers=headers)).json()
    sent = copy.deepcopy(received)
    sent["printshotfeedback_set"][1]["answer"] = "LOOKS_OK"

    response = await client.patch(url(print_id), json=sent, headers=headers)

    assert response.status == 200, await response.text()
    body = await response.json()
    assert {**body, "printshotfeedback_set": None} == {**received, "printshotfeedback_set": None}
    assert body["printshotfeedback_set"][0] == received["printshotfeedback_set"][0]
    assert body["printshotfeedback_set"][1]["answer"] == "LOOKS_OK"

    assert (await print_row(db, print_id))["alert_overwrite"] == "NOT_FAILED"
    rows = await feedback_rows(db, print_id)
    assert rows[0] == (bad, "LOOKS_BAD", at("2026-03-01T13:00:00"))
    assert rows[1][1] == "LOOKS_OK"


async def test_patch_new_values_of_read_only_fields_are_ignored(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id, started_at=at("2026-03-01T12:00:00"))
    feedback_id = await factory.feedback(print_id, image_url="https://example.com/1.jpg")
    received = await (await client.get(url(print_id), headers=headers)).json()
    body = {
        "id": print_id + 1,
        "printer": 42,
        "filename": "renamed.gcode",
        "started_at": "2020-01-01T00:00:00Z",
        "finished_at": "2020-01-01T00:00:00Z",
        "cancelled_at": "not a date",
        "uploaded_at": 5,
        "alerted_at": None,
        "alert_acknowledged_at": [],
        "alert_muted_at": {},
        "paused_at": True,
        "video_url": "https://evil.example.com/v.mp4",
        "tagged_video_url": "x",
        "poster_url": "x",
        "prediction_json_url": "x",
        "printshotfeedback_set": [
            {
                "id": feedback_id,
                "print_id": print_id + 1,
                "image_url": "https://evil.example.com/1.jpg",
                "answer": None,
                "answered_at": "2020-01-01T00:00:00Z",
            }
        ],
    }

    response = await client.patch(url(print_id), json=body, headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == received

    row = await print_row(db, print_id)
    assert (row["filename"], row["started_at"]) == ("benchy.gcode", at("2026-03-01T12:00:00"))
    image_url = await db.fetchval(
        "SELECT image_url FROM print_shot_feedbacks WHERE id = $1", feedback_id
    )
    assert image_url == "https://example.com/1.jpg"
    assert await feedback_rows(db, print_id) == [(feedback_id, None, None)]


async def test_patch_unknown_names_returns_400_naming_each_and_applies_nothing(
    client, db, owner, own_print
):
    _, headers = owner
    body = {"alert_overwrite": "FAILED", "user_id": 2, "deleted_at": None, "colour": "red"}

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "colour": ["Not a field of a print."],
        "deleted_at": ["Not a field of a print."],
        "user_id": ["Not a field of a print."],
    }

    row = await print_row(db, own_print)
    assert (row["alert_overwrite"], row["deleted_at"]) == (None, None)


async def test_patch_problems_in_several_fields_are_reported_together(
    client, db, owner, own_print
):
    _, headers = owner
    body = {
        "alert_overwrite": "maybe",
        "printshotfeedback_set": [{"id": 1_000_000}],
        "colour": "red",
    }

    response = await client.patch(url(own_print), json=body, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "colour": ["Not a field of a print."],
        "alert_overwrite": ['"maybe" is not a valid choice; use FAILED, NOT_FAILED or null.'],
        "printshotfeedback_set": ["Item 0: answer is required."],
    }

    assert (await print_row(db, own_print))["alert_overwrite"] is None


async def test_patch_empty_object_changes_nothing(client, db, owner, own_print):
    _, headers = owner
    received = await (await client.get(url(own_print), headers=headers)).json()

    response = await client.patch(url(own_print), json={}, headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == received

    assert (await print_row(db, own_print))["updated_at"] == at("2026-01-01T00:00:00")


@pytest.mark.parametrize("text", ["[]", '"x"', "3", "null", "true", '[{"alert_overwrite": null}]'])
async def test_patch_body_not_object_returns_400(client, db, owner, own_print, text):
    _, headers = owner

    response = await client.patch(
        url(own_print),
        data=text,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {"non_field_errors": ["The body must be a JSON object."]}

    assert (await print_row(db, own_print))["updated_at"] == at("2026-01-01T00:00:00")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"{'alert_overwrite': 'FAILED'}", id="single-quotes"),
        pytest.param(b'{"alert_overwrite": "FAILED",}', id="trailing-comma"),
        pytest.param(b"[" * 30_000 + b"]" * 30_000, id="deeply-nested"),
    ],
)
async def test_patch_invalid_json_returns_400(client, db, owner, own_print, data):
    _, headers = owner

    response = await client.patch(
        url(own_print), data=data, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {"non_field_errors": ["The body is not valid JSON."]}

    assert (await print_row(db, own_print))["alert_overwrite"] is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"alert_overwrite": "\xff"}', id="not-utf-8"),
        pytest.param('{"alert_overwrite": "FAILED"}'.encode("utf-16"), id="utf-16-with-mark"),
        pytest.param('{"alert_overwrite": "FAILED"}'.encode("utf-16-be"), id="utf-16-be"),
        pytest.param('{"alert_overwrite": "FAILED"}'.encode("utf-32"), id="utf-32"),
        pytest.param('{"alert_overwrite": "FAILED"}'.encode("utf-8-sig"), id="utf-8-mark"),
    ],
)
async def test_patch_body_not_utf8_without_mark_returns_400_and_changes_nothing(
    client, db, owner, own_print, data
):
    _, headers = owner

    response = await client.patch(
        url(own_print), data=data, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "non_field_errors": ["The body must be UTF-8, with no byte order mark."]
    }

    assert (await print_row(db, own_print))["alert_overwrite"] is None


@pytest.mark.parametrize("charset", ["utf-16", "ISO-8859-1", ""])
async def test_patch_with_charset_other_than_utf8_returns_415_and_changes_nothing(
    client, db, owner, own_print, charset
):
    _, headers = owner
    content_type = f'application/json; charset="{charset}"'

    response = await client.patch(
        url(own_print),
        data=b'{"alert_overwrite": "FAILED"}',
        headers={**headers, "Content-Type": content_type},
    )

    assert response.status == 415, await response.text()
    assert await response.json() == {
        "detail": f'Unsupported charset "{charset}": send application/json in UTF-8.'
    }

    assert (await print_row(db, own_print))["alert_overwrite"] is None


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8"])
async def test_patch_with_charset_utf8_applies_the_change(client, db, owner, own_print, charset):
    _, headers = owner

    response = await client.patch(
        url(own_print),
        data=b'{"alert_overwrite": "FAILED"}',
        headers={**headers, "Content-Type": f"application/json; charset={charset}"},
    )

    assert response.status == 200, await response.text()
    assert (await print_row(db, own_print))["alert_overwrite"] == "FAILED"


@pytest.mark.parametrize(
    ("content_type", "seen"),
    [
        ("text/plain", 'Unsupported media type "text/plain": send application/json.'),
        (None, "The request has no Content-Type: send application/json."),
        (
            "application/x-www-form-urlencoded",
            'Unsupported media type "application/x-www-form-urlencoded": send application/json.',
        ),
        (
            "multipart/form-data; boundary=x",
            'Unsupported media type "multipart/form-data": send application/json.',
        ),
    ],
)
async def test_patch_wrong_content_type_returns_415_and_changes_nothing(
    client, db, owner, own_print, content_type, seen
):
    _, headers = owner
    extra = {} if content_type is None else {"Content-Type": content_type}

    response = await client.patch(
        url(own_print),
        data=b'{"alert_overwrite": "FAILED"}',
        headers={**headers, **extra},
        skip_auto_headers=["Content-Type"],
    )

    assert response.status == 415, await response.text()
    assert await response.json() == {"detail": seen}

    assert (await print_row(db, own_print))["alert_overwrite"] is None


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"],
)
async def test_patch_json_with_charset_or_other_case_is_accepted(
    client, db, owner, own_print, content_type
):
    _, headers = owner

    response = await client.patch(
        url(own_print),
        data=b'{"alert_overwrite": "FAILED"}',
        headers={**headers, "Content-Type": content_type},
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["alert_overwrite"] == "FAILED"

    assert (await print_row(db, own_print))["alert_overwrite"] == "FAILED"


# PATCH on prints the user may not change, and other methods


@pytest.mark.parametrize("path", PRINT_PATHS)
@pytest.mark.parametrize("kind", ["missing", "deleted", "foreign"])
async def test_patch_print_not_visible_returns_not_found_and_changes_nothing(
    client, db, factory, owner, stranger, kind, path
):
    print_id = await _not_found_target(kind, factory, owner, stranger)

    response = await client.patch(
        path.format(print_id), json={"alert_overwrite": "FAILED"}, headers=owner[1]
    )

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND

    assert await db.fetchval("SELECT count(*) FROM prints WHERE alert_overwrite IS NOT NULL") == 0


async def test_patch_foreign_feedback_through_foreign_print_changes_nothing(
    client, db, owner, foreign_print
):
    before = {foreign_print: await feedback_rows(db, foreign_print)}
    body = {"printshotfeedback_set": [{"id": before[foreign_print][0][0], "answer": "LOOKS_OK"}]}

    response = await client.patch(url(foreign_print), json=body, headers=owner[1])

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND

    await _assert_nothing_applied(db, [foreign_print], before)


async def test_patch_not_found_responses_are_identical_to_get_ones(
    client, factory, owner, stranger
):
    targets = [
        await _not_found_target(kind, factory, owner, stranger)
        for kind in ("missing", "deleted", "foreign")
    ]
    reference = await client.get(url("abc"), headers=owner[1])

    responses = [
        await client.patch(url(target), json={"alert_overwrite": None}, headers=owner[1])
        for target in targets
    ]

    for response in responses:
        assert response.status == 404, await response.text()
    assert {await response.read() for response in responses} == {await reference.read()}
    assert {response.headers["Content-Type"] for response in responses} == {
        reference.headers["Content-Type"]
    }


@pytest.mark.parametrize("raw_id", ["abc", "0", "01", str(BEYOND_BIGINT)])
async def test_patch_malformed_id_returns_not_found(client, owner, raw_id):
    _, headers = owner

    response = await client.patch(url(raw_id), json={"alert_overwrite": "FAILED"}, headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["DELETE", "PUT", "POST"])
async def test_other_method_on_own_print_returns_405_with_allow(
    client, db, owner, own_print, method
):
    _, headers = owner

    response = await client.request(
        method, url(own_print), json={"alert_overwrite": "FAILED"}, headers=headers
    )

    assert response.status == 405, await response.text()
    assert await response.json() == {"detail": f'Method "{method}" not allowed.'}
    assert set(response.headers["Allow"].split(",")) == {"GET", "PATCH"}

    row = await print_row(db, own_print)
    assert (row["alert_overwrite"], row["deleted_at"]) == (None, None)
