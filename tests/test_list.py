"""GET /api/v1/prints/: filters, date sorting, paging, parameter checks and the list's JSON."""

import datetime

import pytest
from yarl import URL

from service.errors import BadRequest
from service.handlers import STREAM_BATCH
from service.params import MAX_BIGINT, list_params_of, parse_list_params
from tests.conftest import at

LIST = "/api/v1/prints/"

EARLY = at("2026-03-01T10:00:00")
MID = at("2026-03-02T10:00:00")
LATE = at("2026-03-03T10:00:00")
ENDED = at("2026-03-04T09:00:00")

#: Where each filter test puts its prints: one per start time, made in this order.
SLOTS = (("late", LATE), ("early", EARLY), ("never", None), ("mid", MID))
#: The order of the SLOTS prints without sorting (id order) and with each sorting.
ORDERS = [
    pytest.param("", ["late", "early", "never", "mid"], id="unsorted"),
    pytest.param("&sorting=date_desc", ["late", "mid", "early", "never"], id="date_desc"),
    pytest.param("&sorting=date_asc", ["early", "mid", "late", "never"], id="date_asc"),
]
#: One of each way to ask for the list: both orders, paged or not, every filter's query.
EVERY_QUERY = [
    "",
    "sorting=date_desc",
    "sorting=date_asc&start=0&limit=10",
    "filter=cancelled",
    "filter=finished&sorting=date_desc",
    "filter=need_alert_overwrite&sorting=date_asc",
    "filter=need_print_shot_feedback",
    "filter=need_print_shot_feedback&sorting=date_desc",
    "filter=need_print_shot_feedback&sorting=date_asc&start=0&limit=10",
]
#: The three ways to order a list, for tests whose expected ids do not depend on the order.
SORTINGS = [
    pytest.param("", id="unsorted"),
    pytest.param("&sorting=date_desc", id="date_desc"),
    pytest.param("&sorting=date_asc", id="date_asc"),
]
FILTER_CHOICES = "cancelled, finished, need_alert_overwrite, need_print_shot_feedback"
SORTING_CHOICES = "date_desc, date_asc"
WHOLE_NUMBER = "A whole number is required."
ONLY_WITH_SORTING = "Only valid together with sorting."
GIVE_ONCE = "Give this parameter once."
START_RANGE = f"Must be between 0 and {MAX_BIGINT}."
LIMIT_RANGE = "Must be between 1 and 1000."

#: Owner's prints made in bulk, every other row, between prints of another user.
BULK_PRINTS = """
INSERT INTO prints (user_id, filename, started_at)
SELECT CASE WHEN n % 2 = 0 THEN $1::bigint ELSE $2::bigint END,
       'bulk-' || n || '.gcode',
       timestamptz '2026-01-01 00:00Z' + n * interval '1 minute'
  FROM generate_series(1, 2 * $3::int) AS n
 ORDER BY n
RETURNING id, user_id
"""


def ids(body: list[dict]) -> list[int]:
    return [item["id"] for item in body]


def url(query: str) -> str:
    return f"{LIST}?{query}" if query else LIST


async def bulk_prints(db, factory, user_id: int, count: int) -> list[int]:
    """Makes ``count`` prints of the user, interleaved with as many of another user's.

    Returns the user's ids in id order; each starts a minute after the one before it.
    """
    other_id = await factory.user()
    rows = await db.fetch(BULK_PRINTS, user_id, other_id, count)
    return sorted(row["id"] for row in rows if row["user_id"] == user_id)


async def make_slots(factory, user_id: int, matching: dict, *others: dict) -> dict[str, int]:
    """Per slot: a print with ``matching`` fields, then one print per dict of ``others``.

    The prints that do not match share the slot's start, so a filter that let them through
    would show in every order. Returns the matching prints' ids by slot name.
    """
    made = {}
    for name, started_at in SLOTS:
        made[name] = await factory.print(user_id, started_at=started_at, **matching)
        for fields in others:
            await factory.print(user_id, started_at=started_at, **fields)
    return made


@pytest.fixture
async def timeline(factory, owner):
    """Nine prints of the owner with ties on started_at and three never started.

    Each has one unanswered frame, so the need_print_shot_feedback filter keeps them all.
    Returns the ids by letter, a to i in id order.
    """
    user_id, _ = owner
    starts = {
        "a": MID,
        "b": EARLY,
        "c": None,
        "d": MID,
        "e": LATE,
        "f": EARLY,
        "g": None,
        "h": MID,
        "i": None,
    }
    made = {}
    for letter, started_at in starts.items():
        made[letter] = await factory.print(user_id, started_at=started_at)
        await factory.feedback(made[letter])
    return made


#: The timeline in each sorting: latest first or earliest first, ties by id in the same
#: direction, never-started prints last.
TIMELINE_DESC = ["e", "h", "d", "a", "f", "b", "i", "g", "c"]
TIMELINE_ASC = ["b", "f", "a", "d", "h", "e", "c", "g", "i"]


# Filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("sorting", "order"), ORDERS)
async def test_filter_cancelled_lists_only_cancelled_prints(
    client, factory, owner, sorting, order
):
    user_id, headers = owner
    made = await make_slots(factory, user_id, {"cancelled_at": ENDED}, {"finished_at": ENDED}, {})

    response = await client.get(f"{LIST}?filter=cancelled{sorting}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[name] for name in order]


@pytest.mark.parametrize(("sorting", "order"), ORDERS)
async def test_filter_finished_lists_only_finished_prints(client, factory, owner, sorting, order):
    user_id, headers = owner
    made = await make_slots(factory, user_id, {"finished_at": ENDED}, {"cancelled_at": ENDED}, {})

    response = await client.get(f"{LIST}?filter=finished{sorting}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[name] for name in order]


@pytest.mark.parametrize(("sorting", "order"), ORDERS)
async def test_filter_need_alert_overwrite_lists_only_prints_without_verdict(
    client, factory, owner, sorting, order
):
    user_id, headers = owner
    made = await make_slots(
        factory,
        user_id,
        {"alerted_at": ENDED, "alert_overwrite": None},
        {"alert_overwrite": "FAILED"},
        {"alert_overwrite": "NOT_FAILED"},
    )

    response = await client.get(f"{LIST}?filter=need_alert_overwrite{sorting}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[name] for name in order]


@pytest.mark.parametrize(("sorting", "order"), ORDERS)
async def test_filter_need_print_shot_feedback_lists_only_prints_with_frames_all_unanswered(
    client, factory, owner, sorting, order
):
    user_id, headers = owner
    made = {}
    for name, started_at in SLOTS:
        made[name] = await factory.print(user_id, started_at=started_at)
        await factory.feedback(made[name])
        await factory.feedback(made[name])
        await factory.print(user_id, started_at=started_at)
        looks_ok = await factory.print(user_id, started_at=started_at)
        await factory.feedback(looks_ok, answer="LOOKS_OK", answered_at=ENDED)
        undecided = await factory.print(user_id, started_at=started_at)
        await factory.feedback(undecided, answer="UNANSWERED", answered_at=ENDED)
        one_answered = await factory.print(user_id, started_at=started_at)
        await factory.feedback(one_answered)
        await factory.feedback(one_answered, answer="LOOKS_BAD", answered_at=ENDED)

    response = await client.get(
        f"{LIST}?filter=need_print_shot_feedback{sorting}", headers=headers
    )

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[name] for name in order]


@pytest.mark.parametrize("sorting", SORTINGS)
async def test_filter_need_print_shot_feedback_excludes_print_without_frames(
    client, factory, owner, sorting
):
    user_id, headers = owner
    waiting = await factory.print(user_id, started_at=MID)
    await factory.feedback(waiting)
    await factory.print(user_id, started_at=MID)

    response = await client.get(
        f"{LIST}?filter=need_print_shot_feedback{sorting}", headers=headers
    )

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [waiting]


@pytest.mark.parametrize("sorting", SORTINGS)
async def test_filter_need_print_shot_feedback_counts_unanswered_as_an_answer(
    client, factory, owner, sorting
):
    user_id, headers = owner
    waiting = await factory.print(user_id, started_at=MID)
    await factory.feedback(waiting)
    undecided = await factory.print(user_id, started_at=MID)
    await factory.feedback(undecided)
    await factory.feedback(undecided, answer="UNANSWERED", answered_at=ENDED)

    response = await client.get(
        f"{LIST}?filter=need_print_shot_feedback{sorting}", headers=headers
    )

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [waiting]


@pytest.mark.parametrize("sorting", SORTINGS)
async def test_filter_need_print_shot_feedback_excludes_print_with_one_answer_among_many(
    client, factory, owner, sorting
):
    user_id, headers = owner
    waiting = await factory.print(user_id, started_at=MID)
    await factory.feedback(waiting)
    judged = await factory.print(user_id, started_at=MID)
    await factory.feedback(judged)
    await factory.feedback(judged)
    await factory.feedback(judged, answer="LOOKS_BAD", answered_at=ENDED)

    response = await client.get(
        f"{LIST}?filter=need_print_shot_feedback{sorting}", headers=headers
    )

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [waiting]


async def test_filter_matching_no_print_answers_empty_array(client, factory, owner):
    user_id, headers = owner
    await factory.print(user_id, started_at=MID, finished_at=ENDED)

    response = await client.get(f"{LIST}?filter=cancelled", headers=headers)

    assert response.status == 200, await response.text()
    assert await response.text() == "[]"


# Sorting ---------------------------------------------------------------------------------


async def test_date_desc_breaks_start_ties_by_descending_id(client, factory, owner):
    user_id, headers = owner
    first = await factory.print(user_id, started_at=MID)
    second = await factory.print(user_id, started_at=MID)
    later = await factory.print(user_id, started_at=LATE)
    third = await factory.print(user_id, started_at=MID)
    earlier = await factory.print(user_id, started_at=EARLY)

    response = await client.get(f"{LIST}?sorting=date_desc", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [later, third, second, first, earlier]


async def test_date_asc_breaks_start_ties_by_ascending_id(client, factory, owner):
    user_id, headers = owner
    first = await factory.print(user_id, started_at=MID)
    second = await factory.print(user_id, started_at=MID)
    later = await factory.print(user_id, started_at=LATE)
    third = await factory.print(user_id, started_at=MID)
    earlier = await factory.print(user_id, started_at=EARLY)

    response = await client.get(f"{LIST}?sorting=date_asc", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [earlier, first, second, third, later]


async def test_date_desc_puts_never_started_prints_last(client, factory, owner):
    user_id, headers = owner
    never_a = await factory.print(user_id)
    early = await factory.print(user_id, started_at=EARLY)
    never_b = await factory.print(user_id)
    late = await factory.print(user_id, started_at=LATE)
    never_c = await factory.print(user_id)

    response = await client.get(f"{LIST}?sorting=date_desc", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [late, early, never_c, never_b, never_a]


async def test_date_asc_puts_never_started_prints_last(client, factory, owner):
    user_id, headers = owner
    never_a = await factory.print(user_id)
    early = await factory.print(user_id, started_at=EARLY)
    never_b = await factory.print(user_id)
    late = await factory.print(user_id, started_at=LATE)
    never_c = await factory.print(user_id)

    response = await client.get(f"{LIST}?sorting=date_asc", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [early, late, never_a, never_b, never_c]


@pytest.mark.parametrize(
    ("sorting", "expected"),
    [("date_desc", ["later", "sooner"]), ("date_asc", ["sooner", "later"])],
)
async def test_date_sorting_tells_starts_a_microsecond_apart(
    client, factory, owner, sorting, expected
):
    user_id, headers = owner
    made = {
        "later": await factory.print(user_id, started_at=at("2026-03-01T12:00:00.000001")),
        "sooner": await factory.print(user_id, started_at=at("2026-03-01T12:00:00")),
    }

    response = await client.get(f"{LIST}?sorting={sorting}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "order"),
    [
        pytest.param("sorting=date_desc", TIMELINE_DESC, id="date_desc"),
        pytest.param("sorting=date_asc", TIMELINE_ASC, id="date_asc"),
        pytest.param(
            "filter=need_print_shot_feedback&sorting=date_desc", TIMELINE_DESC, id="feedback_desc"
        ),
        pytest.param(
            "filter=need_print_shot_feedback&sorting=date_asc", TIMELINE_ASC, id="feedback_asc"
        ),
    ],
)
async def test_sorting_without_paging_lists_whole_timeline_in_order(
    client, owner, timeline, query, order
):
    _, headers = owner

    response = await client.get(f"{LIST}?{query}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [timeline[letter] for letter in order]


# Paging ----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 4])
@pytest.mark.parametrize(
    ("sorting", "order"),
    [
        pytest.param("date_desc", TIMELINE_DESC, id="date_desc"),
        pytest.param("date_asc", TIMELINE_ASC, id="date_asc"),
    ],
)
async def test_consecutive_pages_cover_sorted_list_once_across_ties_and_nulls(
    client, owner, timeline, sorting, order, limit
):
    _, headers = owner
    expected = [timeline[letter] for letter in order]
    starts = range(0, len(expected) + limit, limit)

    pages = []
    for start in starts:
        response = await client.get(
            f"{LIST}?sorting={sorting}&start={start}&limit={limit}", headers=headers
        )
        assert response.status == 200, await response.text()
        pages.append(ids(await response.json()))

    assert pages == [expected[start : start + limit] for start in starts]
    assert pages[-1] == []


@pytest.mark.parametrize("limit", [1, 2, 4])
@pytest.mark.parametrize(
    ("sorting", "order"),
    [
        pytest.param("date_desc", TIMELINE_DESC, id="date_desc"),
        pytest.param("date_asc", TIMELINE_ASC, id="date_asc"),
    ],
)
async def test_consecutive_need_print_shot_feedback_pages_cover_filtered_list_once(
    client, factory, owner, timeline, sorting, order, limit
):
    user_id, headers = owner
    judged = await factory.print(user_id, started_at=MID)
    await factory.feedback(judged, answer="LOOKS_OK", answered_at=ENDED)
    await factory.print(user_id)
    undecided = await factory.print(user_id, started_at=EARLY)
    await factory.feedback(undecided, answer="UNANSWERED", answered_at=ENDED)
    expected = [timeline[letter] for letter in order]
    starts = range(0, len(expected) + limit, limit)

    pages = []
    for start in starts:
        response = await client.get(
            f"{LIST}?filter=need_print_shot_feedback&sorting={sorting}"
            f"&start={start}&limit={limit}",
            headers=headers,
        )
        assert response.status == 200, await response.text()
        pages.append(ids(await response.json()))

    assert pages == [expected[start : start + limit] for start in starts]


@pytest.mark.parametrize(
    ("query", "order"),
    [
        pytest.param("sorting=date_desc&start=3&limit=4", TIMELINE_DESC[3:7], id="middle"),
        pytest.param("sorting=date_desc&limit=3", TIMELINE_DESC[:3], id="limit_only"),
        pytest.param("sorting=date_asc&start=5", TIMELINE_ASC[5:], id="start_only"),
        pytest.param("sorting=date_asc&start=0&limit=1000", TIMELINE_ASC, id="limit_past_end"),
        pytest.param("sorting=date_asc&start=8&limit=5", TIMELINE_ASC[8:], id="last_row"),
    ],
)
async def test_page_holds_exactly_the_rows_asked_for(client, owner, timeline, query, order):
    _, headers = owner

    response = await client.get(f"{LIST}?{query}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [timeline[letter] for letter in order]


@pytest.mark.parametrize(
    ("query", "order"),
    [
        pytest.param("sorting=date_desc&start=1&limit=2", ["mid", "early"], id="date_desc"),
        pytest.param("sorting=date_asc&start=1&limit=2", ["mid", "late"], id="date_asc"),
    ],
)
async def test_filtered_page_skips_and_counts_only_matching_prints(
    client, factory, owner, query, order
):
    user_id, headers = owner
    made = await make_slots(factory, user_id, {"finished_at": ENDED}, {}, {"cancelled_at": ENDED})

    response = await client.get(f"{LIST}?filter=finished&{query}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[name] for name in order]


@pytest.mark.parametrize("start", [9, 10, 1000, MAX_BIGINT])
async def test_start_beyond_end_answers_empty_array(client, owner, timeline, start):
    _, headers = owner

    response = await client.get(f"{LIST}?sorting=date_desc&start={start}", headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == []


async def test_limit_1_answers_first_print_only(client, owner, timeline):
    _, headers = owner

    response = await client.get(f"{LIST}?sorting=date_desc&start=0&limit=1", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [timeline["e"]]


async def test_limit_1000_answers_1000_of_1001_prints(client, db, factory, owner):
    user_id, headers = owner
    made = await bulk_prints(db, factory, user_id, 1001)

    response = await client.get(f"{LIST}?sorting=date_desc&start=0&limit=1000", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == made[::-1][:1000]


async def test_page_after_limit_1000_answers_the_1001st_print(client, db, factory, owner):
    user_id, headers = owner
    made = await bulk_prints(db, factory, user_id, 1001)

    response = await client.get(f"{LIST}?sorting=date_desc&start=1000&limit=1000", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[0]]


# Parameters that are refused or ignored --------------------------------------------------


@pytest.mark.parametrize(
    ("query", "body"),
    [
        pytest.param("start=0", {"start": [ONLY_WITH_SORTING]}, id="start_unsorted"),
        pytest.param("limit=12", {"limit": [ONLY_WITH_SORTING]}, id="limit_unsorted"),
        pytest.param(
            "start=0&limit=12",
            {"start": [ONLY_WITH_SORTING], "limit": [ONLY_WITH_SORTING]},
            id="both_unsorted",
        ),
        pytest.param(
            "filter=finished&limit=12", {"limit": [ONLY_WITH_SORTING]}, id="limit_filtered"
        ),
    ],
)
async def test_paging_without_sorting_answers_400(client, owner, query, body):
    _, headers = owner

    response = await client.get(f"{LIST}?{query}", headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == body


@pytest.mark.parametrize("value", ["bogus", "CANCELLED", "", "none", "cancelled "])
async def test_unknown_filter_answers_400(client, owner, value):
    _, headers = owner

    response = await client.get(LIST, params={"filter": value}, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "filter": [f'"{value}" is not a valid choice; use one of: {FILTER_CHOICES}.']
    }


async def test_long_unknown_filter_is_cut_short_in_the_400(client, owner):
    _, headers = owner

    response = await client.get(LIST, params={"filter": "x" * 500}, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "filter": [
            '"' + "x" * 36 + "... is not a valid choice; use one of: " + FILTER_CHOICES + "."
        ]
    }


@pytest.mark.parametrize("value", ["bogus", "DATE_DESC", "", "date", "-started_at"])
async def test_unknown_sorting_answers_400(client, owner, value):
    _, headers = owner

    response = await client.get(LIST, params={"sorting": value}, headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "sorting": [f'"{value}" is not a valid choice; use one of: {SORTING_CHOICES}.']
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", WHOLE_NUMBER),
        ("1.5", WHOLE_NUMBER),
        ("-1", WHOLE_NUMBER),
        ("", WHOLE_NUMBER),
        ("1e3", WHOLE_NUMBER),
        ("+1", WHOLE_NUMBER),
        ("0x10", WHOLE_NUMBER),
        ("\u0663", WHOLE_NUMBER),  # ARABIC-INDIC DIGIT THREE: a digit, but not ASCII
        (str(MAX_BIGINT + 1), START_RANGE),
        ("9" * 40, START_RANGE),
    ],
)
async def test_bad_start_answers_400(client, owner, value, message):
    _, headers = owner

    response = await client.get(
        LIST, params={"sorting": "date_desc", "start": value}, headers=headers
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {"start": [message]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", LIMIT_RANGE),
        ("1001", LIMIT_RANGE),
        ("9" * 40, LIMIT_RANGE),
        ("abc", WHOLE_NUMBER),
        ("1.5", WHOLE_NUMBER),
        ("-1", WHOLE_NUMBER),
        ("", WHOLE_NUMBER),
        ("12abc", WHOLE_NUMBER),
        ("\uff11\uff12", WHOLE_NUMBER),  # FULLWIDTH DIGITS ONE, TWO
        (" 5", WHOLE_NUMBER),
        ("5\n", WHOLE_NUMBER),
    ],
)
async def test_bad_limit_answers_400(client, owner, value, message):
    _, headers = owner

    response = await client.get(
        LIST, params={"sorting": "date_asc", "start": "0", "limit": value}, headers=headers
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {"limit": [message]}


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("filter=cancelled&filter=finished", {"filter": [GIVE_ONCE]}),
        ("filter=cancelled&filter=cancelled", {"filter": [GIVE_ONCE]}),
        ("sorting=date_desc&sorting=date_asc", {"sorting": [GIVE_ONCE]}),
        ("sorting=date_desc&sorting=date_desc", {"sorting": [GIVE_ONCE]}),
        ("sorting=date_desc&start=0&start=12", {"start": [GIVE_ONCE]}),
        ("sorting=date_desc&limit=12&limit=12", {"limit": [GIVE_ONCE]}),
        ("start=0&start=0", {"start": [GIVE_ONCE]}),
    ],
)
async def test_parameter_given_twice_answers_400(client, owner, query, body):
    _, headers = owner

    response = await client.get(f"{LIST}?{query}", headers=headers)

    assert response.status == 400, await response.text()
    assert await response.json() == body


async def test_several_bad_parameters_are_named_in_one_400(client, owner):
    _, headers = owner

    response = await client.get(
        f"{LIST}?filter=bogus&sorting=date_desc&start=-1&limit=0", headers=headers
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "filter": [f'"bogus" is not a valid choice; use one of: {FILTER_CHOICES}.'],
        "start": [WHOLE_NUMBER],
        "limit": [LIMIT_RANGE],
    }


@pytest.mark.parametrize(
    ("query", "order"),
    [
        pytest.param("page=3&foo=bar", ["a", "b", "c"], id="unsorted"),
        pytest.param("format=json&offset=5&ordering=-id", ["a", "b", "c"], id="drf_names"),
        pytest.param("sorting=date_desc&page=3&foo=bar", ["b", "a", "c"], id="sorted"),
        pytest.param("Sorting=bogus&FILTER=bogus", ["a", "b", "c"], id="other_case"),
    ],
)
async def test_unknown_parameters_are_ignored(client, factory, owner, query, order):
    user_id, headers = owner
    made = {
        "a": await factory.print(user_id, started_at=EARLY),
        "b": await factory.print(user_id, started_at=LATE),
        "c": await factory.print(user_id),
    }

    response = await client.get(f"{LIST}?{query}", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [made[name] for name in order]


# Whose prints ----------------------------------------------------------------------------


async def _print_matching_every_filter(factory, user_id: int, **fields) -> int:
    """A started, finished and cancelled print without verdict and with one open frame."""
    print_id = await factory.print(
        user_id, started_at=MID, finished_at=ENDED, cancelled_at=ENDED, **fields
    )
    await factory.feedback(print_id)
    return print_id


@pytest.mark.parametrize("query", EVERY_QUERY)
async def test_list_never_shows_other_users_prints(client, factory, owner, stranger, query):
    user_id, headers = owner
    stranger_id, _ = stranger
    await _print_matching_every_filter(factory, stranger_id)
    own = await _print_matching_every_filter(factory, user_id)
    await _print_matching_every_filter(factory, stranger_id)

    response = await client.get(url(query), headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [own]


@pytest.mark.parametrize("query", EVERY_QUERY)
async def test_list_never_shows_soft_deleted_prints(client, factory, owner, query):
    user_id, headers = owner
    await _print_matching_every_filter(factory, user_id, deleted_at=ENDED)
    live = await _print_matching_every_filter(factory, user_id)
    await _print_matching_every_filter(factory, user_id, deleted_at=ENDED)

    response = await client.get(url(query), headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [live]


async def test_other_user_sees_only_their_own_prints(client, factory, owner, stranger):
    user_id, _ = owner
    stranger_id, stranger_headers = stranger
    await factory.print(user_id, started_at=MID)
    theirs = await factory.print(stranger_id, started_at=EARLY)
    await factory.print(user_id, started_at=LATE)

    response = await client.get(LIST, headers=stranger_headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [theirs]


# Without sorting: the whole list, streamed ------------------------------------------------


async def test_unsorted_list_is_in_id_order_whatever_the_starts(client, factory, owner):
    user_id, headers = owner
    made = [
        await factory.print(user_id, started_at=LATE),
        await factory.print(user_id),
        await factory.print(user_id, started_at=EARLY),
        await factory.print(user_id, started_at=MID),
    ]

    response = await client.get(LIST, headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == made


@pytest.mark.parametrize(
    "count",
    [1, STREAM_BATCH - 1, STREAM_BATCH, STREAM_BATCH + 1, 2 * STREAM_BATCH, 1200],
)
async def test_unsorted_list_spanning_stream_batches_holds_every_print_once(
    client, db, factory, owner, count
):
    user_id, headers = owner
    made = await bulk_prints(db, factory, user_id, count)

    response = await client.get(LIST, headers=headers)

    assert response.status == 200, await response.text()
    listed = ids(await response.json())
    assert (len(listed), listed[0], listed[-1]) == (count, made[0], made[-1])
    assert listed == made


@pytest.mark.parametrize("query", ["", "?sorting=date_desc&limit=2"])
async def test_list_says_its_json_is_utf8_streamed_or_not(client, factory, owner, query):
    user_id, headers = owner
    await factory.print(user_id, filename="pièce.gcode")

    response = await client.get(LIST + query, headers=headers)

    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_unsorted_need_print_shot_feedback_spanning_batches_holds_every_match_once(
    client, db, factory, owner
):
    user_id, headers = owner
    made = await bulk_prints(db, factory, user_id, 1200)
    await db.execute(
        "INSERT INTO print_shot_feedbacks (print_id, image_url, answer)"
        " SELECT p.id, 'https://example.com/f/' || p.id || '.jpg', NULL FROM prints AS p"
        " UNION ALL"
        " SELECT p.id, 'https://example.com/g/' || p.id || '.jpg', 'LOOKS_OK' FROM prints AS p"
        " WHERE p.id % 3 = 0"
    )
    waiting = [print_id for print_id in made if print_id % 3 != 0]

    response = await client.get(f"{LIST}?filter=need_print_shot_feedback", headers=headers)

    assert response.status == 200, await response.text()
    listed = ids(await response.json())
    assert (len(listed), listed[0], listed[-1]) == (800, waiting[0], waiting[-1])
    assert listed == waiting


async def test_unsorted_list_of_1200_prints_is_sent_in_several_chunks(client, db, factory, owner):
    user_id, headers = owner
    await bulk_prints(db, factory, user_id, 1200)

    response = await client.get(LIST, headers=headers)

    assert response.status == 200, await response.text()
    assert response.headers["Transfer-Encoding"] == "chunked"
    chunks = [end async for _, end in response.content.iter_chunks() if end]
    assert len(chunks) >= 3


@pytest.mark.parametrize("query", EVERY_QUERY)
async def test_user_without_prints_gets_empty_array(client, owner, query):
    _, headers = owner

    response = await client.get(url(query), headers=headers)

    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    assert await response.text() == "[]"


@pytest.mark.parametrize("query", ["", "sorting=date_desc"])
async def test_list_answers_with_json_content_type(client, factory, owner, query):
    user_id, headers = owner
    await factory.print(user_id, started_at=MID)

    response = await client.get(url(query), headers=headers)

    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"


async def test_list_without_trailing_slash_answers_same_list(client, factory, owner):
    user_id, headers = owner
    first = await factory.print(user_id, started_at=LATE)
    second = await factory.print(user_id, started_at=EARLY)

    response = await client.get("/api/v1/prints?sorting=date_asc", headers=headers)

    assert response.status == 200, await response.text()
    assert ids(await response.json()) == [second, first]


# The JSON of a Print in a list --------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", "sorting=date_desc", "sorting=date_asc&start=0&limit=1", "filter=finished"],
)
async def test_list_shows_fully_populated_print_exactly(client, db, factory, owner, query):
    user_id, headers = owner
    printer_id = await factory.printer(user_id, "MK4 left")
    print_id = await factory.print(
        user_id,
        printer_id=printer_id,
        filename="benchy.gcode",
        started_at=at("2026-03-01T12:00:00.250000"),
        finished_at=at("2026-03-01T13:10:00"),
        cancelled_at=at("2026-03-01T13:10:00.5"),
        uploaded_at=at("2026-03-01T13:15:30.000001"),
        alerted_at=at("2026-03-01T12:30:00"),
        alert_acknowledged_at=at("2026-03-01T12:31:00"),
        alert_muted_at=at("2026-03-01T12:32:00"),
        paused_at=at("2026-03-01T12:30:05"),
        video_url="https://example.com/v/1.mp4",
        tagged_video_url="https://example.com/v/1-tagged.mp4",
        poster_url="https://example.com/v/1.jpg",
        prediction_json_url="https://example.com/p/1.json",
        alert_overwrite="NOT_FAILED",
    )
    # Made out of id order: the list must put them in id order all the same.
    for feedback_id, answer, answered_at in (
        (30, "LOOKS_BAD", at("2026-03-02T08:00:00.123456")),
        (10, None, None),
        (20, "UNANSWERED", at("2026-03-02T08:01:00")),
    ):
        await db.execute(
            "INSERT INTO print_shot_feedbacks (id, print_id, image_url, answer, answered_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            feedback_id,
            print_id,
            f"https://example.com/f/{feedback_id}.jpg",
            answer,
            answered_at,
        )

    response = await client.get(url(query), headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == [
        {
            "id": print_id,
            "printer": printer_id,
            "filename": "benchy.gcode",
            "started_at": "2026-03-01T12:00:00.250000Z",
            "finished_at": "2026-03-01T13:10:00.000000Z",
            "cancelled_at": "2026-03-01T13:10:00.500000Z",
            "uploaded_at": "2026-03-01T13:15:30.000001Z",
            "alerted_at": "2026-03-01T12:30:00.000000Z",
            "alert_acknowledged_at": "2026-03-01T12:31:00.000000Z",
            "alert_muted_at": "2026-03-01T12:32:00.000000Z",
            "paused_at": "2026-03-01T12:30:05.000000Z",
            "video_url": "https://example.com/v/1.mp4",
            "tagged_video_url": "https://example.com/v/1-tagged.mp4",
            "poster_url": "https://example.com/v/1.jpg",
            "prediction_json_url": "https://example.com/p/1.json",
            "alert_overwrite": "NOT_FAILED",
            "printshotfeedback_set": [
                {
                    "id": 10,
                    "print_id": print_id,
                    "image_url": "https://example.com/f/10.jpg",
                    "answer": None,
                    "answered_at": None,
                },
                {
                    "id": 20,
                    "print_id": print_id,
                    "image_url": "https://example.com/f/20.jpg",
                    "answer": "UNANSWERED",
                    "answered_at": "2026-03-02T08:01:00.000000Z",
                },
                {
                    "id": 30,
                    "print_id": print_id,
                    "image_url": "https://example.com/f/30.jpg",
                    "answer": "LOOKS_BAD",
                    "answered_at": "2026-03-02T08:00:00.123456Z",
                },
            ],
        }
    ]


@pytest.mark.parametrize("query", ["", "sorting=date_desc"])
async def test_list_shows_bare_print_with_nulls_and_no_frames(client, factory, owner, query):
    user_id, headers = owner
    print_id = await factory.print(user_id, filename="cube.gcode")

    response = await client.get(url(query), headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == [
        {
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
    ]


@pytest.mark.parametrize("query", ["", "sorting=date_desc"])
async def test_list_writes_timestamps_in_utc_with_z(client, factory, owner, query):
    user_id, headers = owner
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    await factory.print(
        user_id, started_at=datetime.datetime(2026, 3, 1, 14, 0, 0, 250000, tzinfo=plus_two)
    )

    response = await client.get(url(query), headers=headers)

    assert response.status == 200, await response.text()
    assert [item["started_at"] for item in await response.json()] == [
        "2026-03-01T12:00:00.250000Z"
    ]


def test_remembered_list_params_equal_a_fresh_reading():
    raw = "sorting=date_asc&start=0030&limit=5&filter=finished"

    assert list_params_of(raw) == parse_list_params(URL(f"/?{raw}").query)
    assert list_params_of(raw) is list_params_of(raw)


def test_refused_list_params_are_refused_again():
    with pytest.raises(BadRequest):
        list_params_of("start=1")

    with pytest.raises(BadRequest):
        list_params_of("start=1")
