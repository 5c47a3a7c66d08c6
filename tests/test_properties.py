"""Properties of what clients send: any query string on the list, any JSON as a PATCH body.

Each property holds the service to a reading of the contract written out in this module
(the ``read_*`` functions), apart from service/params.py: the same input must give the same
values, or the same 400 body, and nothing else may be raised. The first properties call the
parsers directly, with many examples; the last ones go through the real app and database
with few, and also check that a refused PATCH leaves every row as it was.

The examples are the same on every run (the ``printapi`` profile in conftest.py); run
``pytest --hypothesis-profile=explore tests/test_properties.py`` to look further.
"""

import datetime
import decimal
import json
import re

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from yarl import URL

from service.errors import BadRequest
from service.params import parse_json_body, parse_list_params, parse_print_change
from tests.conftest import at

# The contract, written out -------------------------------------------------------------

NAMES = ("filter", "sorting", "start", "limit")
FILTERS = ("cancelled", "finished", "need_alert_overwrite", "need_print_shot_feedback")
SORTINGS = ("date_desc", "date_asc")
VERDICTS = ("FAILED", "NOT_FAILED")
ANSWERS = ("LOOKS_BAD", "LOOKS_OK", "UNANSWERED")
#: The largest id, and the largest ``start``: PostgreSQL's bigint.
BIGINT_MAX = 9_223_372_036_854_775_807
PRINT_FIELDS = (
    "id",
    "printer",
    "filename",
    "started_at",
    "finished_at",
    "cancelled_at",
    "uploaded_at",
    "alerted_at",
    "alert_acknowledged_at",
    "alert_muted_at",
    "paused_at",
    "video_url",
    "tagged_video_url",
    "poster_url",
    "prediction_json_url",
    "alert_overwrite",
    "printshotfeedback_set",
)
READ_ONLY_FIELDS = PRINT_FIELDS[:15]
FEEDBACK_FIELDS = ("id", "print_id", "image_url", "answer", "answered_at")


class _Unset:
    """A verdict the body did not send, as against a verdict of null."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()
LIST = "/api/v1/prints/"
JSON_HEADERS = {"Content-Type": "application/json"}


def shown(value) -> str:
    """A client's value as a message quotes it: its compact JSON, cut after 37 characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 40 else text[:37] + "..."


def read_number(text: str, low: int, high: int) -> int | str:
    """A list parameter's number: ASCII digits only (leading zeros allowed), within range."""
    if re.fullmatch("[0-9]+", text) is None:
        return "A whole number is required."
    value = decimal.Decimal(text)  # no limit on digits, unlike int()
    if not low <= value <= high:
        return f"Must be between {low} and {high}."
    return int(value)


def read_list(pairs: list[tuple[str, str]]) -> tuple[str, dict]:
    """("accepted", the list's parameters) or ("refused", the 400 body) for a query."""
    errors = {}
    once = {}
    for name in NAMES:
        values = [value for key, value in pairs if key == name]
        if len(values) > 1:
            errors[name] = ["Give this parameter once."]
        elif values:
            once[name] = values[0]

    accepted = {"filter": None, "sorting": None, "start": 0, "limit": None}
    for name, choices in (("filter", FILTERS), ("sorting", SORTINGS)):
        if name not in once:
            continue
        if once[name] in choices:
            accepted[name] = once[name]
        else:
            errors[name] = [
                f"{shown(once[name])} is not a valid choice; use one of: {', '.join(choices)}."
            ]

    sorting_sent = any(key == "sorting" for key, _ in pairs)
    for name, low, high in (("start", 0, BIGINT_MAX), ("limit", 1, 1000)):
        if name not in once:
            continue
        if not sorting_sent:
            errors[name] = ["Only valid together with sorting."]
            continue
        number = read_number(once[name], low, high)
        if isinstance(number, str):
            errors[name] = [number]
        else:
            accepted[name] = number

    return ("refused", errors) if errors else ("accepted", accepted)


def _is_id(value) -> bool:
    return type(value) is int and 1 <= value <= BIGINT_MAX


def _read_item(where: str, item, seen: set) -> tuple[list[str], tuple | None]:
    """The messages about one item of printshotfeedback_set, and its (id, answer) if good."""
    if not isinstance(item, dict):
        return [f"{where}: must be an object with id and answer."], None

    messages = []
    unknown = sorted(name for name in item if name not in FEEDBACK_FIELDS)
    if unknown:
        messages.append(f"{where}: {', '.join(unknown)} is not a field of a feedback.")
    feedback_id = item.get("id")
    if not _is_id(feedback_id):
        return [*messages, f"{where}: id must be the id of a feedback of this print."], None
    if feedback_id in seen:
        return [*messages, f"{where}: feedback {feedback_id} is listed twice."], None
    seen.add(feedback_id)
    if "answer" not in item:
        return [*messages, f"{where}: answer is required."], None
    answer = item["answer"]
    if answer is not None and not (isinstance(answer, str) and answer in ANSWERS):
        return [
            *messages,
            f"{where}: {shown(answer)} is not a valid answer; "
            "use LOOKS_BAD, LOOKS_OK, UNANSWERED or null.",
        ], None
    return messages, (feedback_id, answer)


def read_change(body) -> tuple[str, object]:
    """("accepted", (verdict or UNSET, {frame id: answer})) or ("refused", the 400 body)."""
    if not isinstance(body, dict):
        return "refused", {"non_field_errors": ["The body must be a JSON object."]}

    errors = {name: ["Not a field of a print."] for name in body if name not in PRINT_FIELDS}
    verdict = body.get("alert_overwrite", UNSET)
    if verdict not in (UNSET, None) and not (isinstance(verdict, str) and verdict in VERDICTS):
        errors["alert_overwrite"] = [
            f"{shown(verdict)} is not a valid choice; use FAILED, NOT_FAILED or null."
        ]

    answers = {}
    if "printshotfeedback_set" in body:
        items = body["printshotfeedback_set"]
        if not isinstance(items, list):
            messages = ['Must be a list of {"id": ..., "answer": ...} objects.']
        else:
            messages, seen = [], set()
            for index, item in enumerate(items):
                found, entry = _read_item(f"Item {index}", item, seen)
                messages += found
                if entry is not None:
                    answers[entry[0]] = entry[1]
        if messages:
            errors["printshotfeedback_set"] = messages

    return ("refused", errors) if errors else ("accepted", (verdict, answers))


# What the code under test says, in the same terms ----------------------------------------


def observe_list(pairs: list[tuple[str, str]]) -> tuple[str, dict]:
    try:
        params = parse_list_params(MultiDict(pairs))
    except BadRequest as refusal:
        assert json.loads(refusal.text) == refusal.errors
        return "refused", refusal.errors
    return "accepted", {
        "filter": params.filter and params.filter.value,
        "sorting": params.sorting and params.sorting.value,
        "start": params.start,
        "limit": params.limit,
    }


def observe_change(body) -> tuple[str, object]:
    try:
        change = parse_print_change(body)
    except BadRequest as refusal:
        assert json.loads(refusal.text) == refusal.errors
        return "refused", refusal.errors
    verdict = UNSET
    if change.sets_alert_overwrite:
        verdict = change.alert_overwrite and change.alert_overwrite.value
    answers = {key: value and value.value for key, value in change.answers.items()}
    return "accepted", (verdict, answers)


# Inputs ----------------------------------------------------------------------------------

#: Characters that matter to parsers, then any character at all, lone surrogates included.
_TRICKY = "0123456789+-. eE_xX\t\n\x00\u0663\uff11\u00b2\ud800\udfff"
CHARACTERS = st.one_of(
    st.sampled_from(_TRICKY),
    st.characters(exclude_categories=[]),
    st.characters(categories=["Cs"]),
)
#: What a URL can carry: no lone surrogates, which have no UTF-8 form.
URL_CHARACTERS = st.one_of(st.sampled_from(_TRICKY[:-2]), st.characters(exclude_categories=["Cs"]))


def _number_like(characters) -> st.SearchStrategy[str]:
    """Texts that look like numbers, or nearly: signs, spaces, zeros, fractions, exponents."""
    affix = st.text(st.sampled_from(" +-\t\n\x000.e"), max_size=2)
    return st.one_of(
        st.integers(min_value=-(10**25), max_value=10**25).map(str),
        st.sampled_from([BIGINT_MAX, BIGINT_MAX + 1, 999, 1000, 1001, 0, 1]).map(str),
        st.builds(
            lambda zeros, number: "0" * zeros + str(number),
            st.one_of(st.integers(0, 3), st.integers(4290, 4310)),
            st.integers(0, 2000),
        ),
        st.builds(lambda a, number, b: f"{a}{number}{b}", affix, st.integers(0, 2000), affix),
        st.floats().map(str),
        st.from_regex(r"[+-]?[0-9]{1,3}(\.[0-9]{0,2})?([eE][+-]?[0-9]{1,2})?", fullmatch=True),
        st.text(characters, max_size=6),
    )


def _query_pairs(characters) -> st.SearchStrategy[list[tuple[str, str]]]:
    names = st.one_of(
        st.sampled_from(NAMES),
        st.sampled_from(["Sorting", "LIMIT", "start ", "page", "offset", ""]),
        st.text(characters, max_size=6),
    )
    values = st.one_of(
        st.sampled_from(FILTERS + SORTINGS),
        st.sampled_from(FILTERS + SORTINGS).map(str.upper),
        _number_like(characters),
        st.text(characters, max_size=12),
    )
    # Half the queries name a valid sorting first, so that start and limit get read.
    sorted_first = st.sampled_from([[], [], [("sorting", "date_desc")], [("sorting", "date_asc")]])
    return st.builds(
        lambda first, rest: first + rest,
        sorted_first,
        st.lists(st.tuples(names, values), max_size=8),
    )


QUERY_PAIRS = _query_pairs(CHARACTERS)
URL_QUERY_PAIRS = _query_pairs(URL_CHARACTERS)
UNKNOWN_PAIRS = st.lists(
    st.tuples(st.text(CHARACTERS, max_size=8).filter(lambda name: name not in NAMES), st.text()),
    max_size=4,
)


def _json_values(characters, floats) -> st.SearchStrategy:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([0, -1, BIGINT_MAX, BIGINT_MAX + 1, 10**100]),
        floats,
        st.text(characters, max_size=10),
        st.sampled_from(VERDICTS + ANSWERS),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.text(characters, max_size=6), inner, max_size=3),
        ),
        max_leaves=6,
    )


def _well_formed_bodies(frame_ids: list[int]) -> st.SearchStrategy[dict]:
    """PATCH bodies in the contract's shape, each frame once: only frame ownership may fail."""
    item = st.fixed_dictionaries(
        {"id": st.sampled_from(frame_ids), "answer": st.sampled_from([*ANSWERS, None])}
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "alert_overwrite": st.sampled_from([*VERDICTS, None]),
            "printshotfeedback_set": st.lists(item, max_size=4, unique_by=lambda i: i["id"]),
            "filename": st.just("renamed.gcode"),
        },
    )


def _bodies(characters, floats, frame_ids: list[int]) -> st.SearchStrategy:
    """PATCH bodies: mostly objects near the contract's shape, sometimes anything at all."""
    anything = _json_values(characters, floats)
    ids = st.one_of(
        st.sampled_from(frame_ids),
        st.sampled_from(frame_ids),
        st.sampled_from([0, -1, BIGINT_MAX, BIGINT_MAX + 1, True, 1.0, "1", None]),
        anything,
    )
    item = st.builds(
        lambda known, extra: {**extra, **known},
        st.fixed_dictionaries(
            {},
            optional={
                "id": ids,
                "answer": st.one_of(st.sampled_from([*ANSWERS, None]), anything),
                "print_id": anything,
                "image_url": anything,
                "answered_at": anything,
            },
        ),
        st.dictionaries(st.text(characters, max_size=6), anything, max_size=2),
    )
    good_item = st.fixed_dictionaries(
        {"id": st.sampled_from(frame_ids), "answer": st.sampled_from([*ANSWERS, None])}
    )
    frames = st.lists(st.one_of(good_item, item, item, anything), max_size=5)
    read_only = {name: anything for name in READ_ONLY_FIELDS}
    known = st.fixed_dictionaries(
        {},
        optional={
            "alert_overwrite": st.one_of(st.sampled_from([*VERDICTS, None]), anything),
            "printshotfeedback_set": st.one_of(frames, frames, anything),
            **read_only,
        },
    )
    unknown = st.dictionaries(st.text(characters, max_size=8), anything, max_size=2)
    objects = st.builds(lambda known, extra: {**extra, **known}, known, st.just({}) | unknown)
    valid = _well_formed_bodies(frame_ids)
    return st.one_of(objects, objects, valid, anything)


ANY_BODY = _bodies(CHARACTERS, st.floats(), frame_ids=[1, 2, 3])

#: Python refuses to make an int of a text of more digits than this (sys.int_info).
INT_DIGITS_LIMIT = 4300
NOT_JSON = "not JSON"


def _number_text(digits: int) -> tuple[str, object, frozenset]:
    text = "1" + "0" * (digits - 1)
    if digits > INT_DIGITS_LIMIT:
        return text, None, frozenset([NOT_JSON])
    return text, 10 ** (digits - 1), frozenset()


def _array(items: list[tuple]) -> tuple[str, object, frozenset]:
    text = "[" + ",".join(item[0] for item in items) + "]"
    return text, [item[1] for item in items], frozenset().union(*(item[2] for item in items))


def _object(members: list[tuple[str, tuple]]) -> tuple[str, object, frozenset]:
    text = "{" + ",".join(f"{json.dumps(name)}:{item[0]}" for name, item in members) + "}"
    names = [name for name, _ in members]
    twice = {("twice", name) for name in names if names.count(name) > 1}
    defects = frozenset(twice).union(*(item[2] for _, item in members))
    return text, {name: item[1] for name, item in members}, defects


def _documents(frame_ids: list[int]) -> st.SearchStrategy[tuple[str, object, frozenset]]:
    """JSON texts, each with the value it holds and what makes it refused, if anything.

    A text may repeat a name in an object, hold NaN or Infinity, or a number too long for
    Python: the strict reading the contract asks for refuses each of them.
    """
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(CHARACTERS, max_size=6),
        st.sampled_from([*VERDICTS, *ANSWERS, *frame_ids]),
    )
    plain = scalars.map(lambda value: (json.dumps(value), value, frozenset()))
    leaves = st.one_of(
        plain,
        plain,
        st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(
            lambda text: (text, None, frozenset([NOT_JSON]))
        ),
        st.integers(INT_DIGITS_LIMIT - 2, INT_DIGITS_LIMIT + 2).map(_number_text),
    )
    names = st.one_of(
        st.sampled_from(["alert_overwrite", "printshotfeedback_set", "id", "answer", "paused_at"]),
        st.text(CHARACTERS, max_size=3),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(_array),
            st.lists(st.tuples(names, inner), max_size=4).map(_object),
        ),
        max_leaves=8,
    )


def refusals_of(defects: frozenset) -> list[dict]:
    """The 400 bodies a text with these defects may get: one for each defect it has."""
    messages = [
        "The body is not valid JSON."
        if defect == NOT_JSON
        else f"The name {shown(defect[1])} is given twice in one object."
        for defect in defects
    ]
    return [{"non_field_errors": [message]} for message in messages]


# Properties of the parsers ---------------------------------------------------------------


#: The parsers are fast: these properties afford five times the profile's examples.
MANY = settings(max_examples=5 * settings.default.max_examples)


@MANY
@given(QUERY_PAIRS)
def test_any_query_gives_the_contracts_values_or_its_400(pairs):
    assert observe_list(pairs) == read_list(pairs)


@given(QUERY_PAIRS, UNKNOWN_PAIRS, st.randoms(use_true_random=False))
def test_unknown_parameters_never_change_the_outcome(pairs, unknown, random):
    mixed = pairs + unknown
    random.shuffle(mixed)
    # Shuffling keeps the outcome: a name given twice is refused in any order.
    assert observe_list(mixed) == observe_list(pairs)


@MANY
@given(ANY_BODY)
def test_any_json_body_gives_the_contracts_change_or_its_400(body):
    assert observe_change(body) == read_change(body)


@MANY
@given(_documents(frame_ids=[1, 2, 3]))
def test_any_json_text_is_read_strictly_or_refused_for_a_defect_it_has(document):
    text, value, defects = document

    try:
        body = parse_json_body(text.encode())
    except BadRequest as refusal:
        assert refusal.errors in refusals_of(defects)
        return
    assert not defects
    assert body == value


@given(
    st.fixed_dictionaries(
        {name: _json_values(CHARACTERS, st.floats()) for name in READ_ONLY_FIELDS}
    )
)
def test_read_only_fields_with_any_values_change_nothing(body):
    assert observe_change(body) == ("accepted", (UNSET, {}))


# Properties through the app and the database ---------------------------------------------

#: Few examples: each is a request. Fixtures are made once for all of a test's examples,
#: which is sound here: the list examples only read, and each PATCH example first puts the
#: rows it may change back as they were.
THROUGH_THE_APP = settings(
    max_examples=settings.default.max_examples // 2,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
EARLY = at("2026-03-01T10:00:00")
MID = at("2026-03-02T10:00:00")
LATE = at("2026-03-03T10:00:00")
ENDED = at("2026-03-04T09:00:00")
#: The owner's prints for the list: ties and never-started prints, one to match each filter.
SHELF = (
    {"started_at": MID, "finished_at": ENDED, "answers": []},
    {"started_at": EARLY, "cancelled_at": ENDED, "answers": [None]},
    {"started_at": None, "alert_overwrite": "FAILED", "answers": ["LOOKS_OK", None]},
    {"started_at": MID, "alert_overwrite": "NOT_FAILED", "answers": []},
    {"started_at": LATE, "finished_at": ENDED, "answers": [None, None]},
    {"started_at": None, "cancelled_at": ENDED, "answers": ["UNANSWERED"]},
)


@pytest.fixture
async def shelf(factory, owner, stranger) -> list[dict]:
    """The SHELF prints of the owner, each with its id.

    Beside them, a print of the stranger and a deleted one of the owner, which no list shows.
    """
    made = []
    for fields in SHELF:
        columns = {name: value for name, value in fields.items() if name != "answers"}
        print_id = await factory.print(owner[0], **columns)
        for answer in fields["answers"]:
            await factory.feedback(print_id, answer, ENDED if answer else None)
        made.append({**fields, "id": print_id})
    hidden = await factory.print(stranger[0], started_at=MID, finished_at=ENDED)
    await factory.feedback(hidden)
    await factory.print(owner[0], started_at=MID, deleted_at=ENDED)
    return made


def read_page(prints: list[dict], params: dict) -> list[int]:
    """The ids the contract lists for accepted parameters, from the prints' fields."""
    keeps = {
        None: lambda print_: True,
        "cancelled": lambda print_: print_.get("cancelled_at") is not None,
        "finished": lambda print_: print_.get("finished_at") is not None,
        "need_alert_overwrite": lambda print_: print_.get("alert_overwrite") is None,
        "need_print_shot_feedback": lambda print_: (
            print_["answers"] != [] and all(answer is None for answer in print_["answers"])
        ),
    }
    matching = [print_ for print_ in prints if keeps[params["filter"]](print_)]
    if params["sorting"] is None:
        return sorted(print_["id"] for print_ in matching)

    newest_first = params["sorting"] == "date_desc"
    started = sorted(
        (print_ for print_ in matching if print_["started_at"] is not None),
        key=lambda print_: (print_["started_at"], print_["id"]),
        reverse=newest_first,
    )
    never = sorted(
        (print_ for print_ in matching if print_["started_at"] is None),
        key=lambda print_: print_["id"],
        reverse=newest_first,
    )
    ordered = [print_["id"] for print_ in started + never]
    end = None if params["limit"] is None else params["start"] + params["limit"]
    return ordered[params["start"] : end]


@THROUGH_THE_APP
@given(pairs=URL_QUERY_PAIRS)
async def test_any_query_on_the_list_answers_the_contracts_page_or_its_400(
    client, owner, shelf, pairs
):
    target = URL(LIST).with_query(pairs)
    # aiohttp refuses a request line over 8190 bytes before the app sees it (docs/api.md).
    assume(len(str(target)) < 8000)

    response = await client.get(target, headers=owner[1])

    outcome, expected = read_list(pairs)
    event(outcome)
    if outcome == "refused":
        assert response.status == 400, await response.text()
        assert await response.json() == expected
    else:
        assert response.status == 200, await response.text()
        assert [item["id"] for item in await response.json()] == read_page(shelf, expected)


#: Query strings as bytes on the wire: names, values, separators and any percent-escape,
#: invalid UTF-8 and encoded surrogates included.
RAW_QUERIES = st.lists(
    st.one_of(
        st.sampled_from([*NAMES, *FILTERS, *SORTINGS, "=", "&", ";", "+", "%", "%2", "0", "9"]),
        st.sampled_from(["%00", "%FF", "%C3", "%ED%A0%80", "%F0%9F%92", "%26", "%3D", "%25"]),
        st.binary(min_size=1, max_size=3).map(lambda raw: "".join(f"%{b:02X}" for b in raw)),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=4),
    ),
    max_size=12,
).map("".join)


@THROUGH_THE_APP
@given(raw=RAW_QUERIES)
async def test_any_raw_query_string_answers_a_list_or_a_contract_shaped_400(
    client, owner, shelf, raw
):
    response = await client.get(URL(f"{LIST}?{raw}", encoded=True), headers=owner[1])

    assert response.content_type == "application/json"
    body = await response.json()
    if response.status == 200:
        assert {item["id"] for item in body} <= {print_["id"] for print_ in shelf}
    else:
        assert response.status == 400, body
        assert set(body) <= set(NAMES), body
        assert all(isinstance(text, str) for messages in body.values() for text in messages)
        assert all(messages for messages in body.values())


#: Frames of the PATCH scene, by id: the print's own three, another print's of the owner,
#: one of the stranger's, and an id that no frame has. Each with the answer it starts with.
OWN_FRAMES = {
    11: (None, None),
    12: ("LOOKS_OK", EARLY),
    13: ("UNANSWERED", None),
    14: ("LOOKS_BAD", EARLY),
}
OTHER_FRAMES = {21: (None, None), 31: ("LOOKS_BAD", EARLY)}
NO_FRAME = 99
LONG_AGO = at("2026-01-01T00:00:00")
RESET_PRINTS = "UPDATE prints SET alert_overwrite = NULL, updated_at = $1"
RESET_FRAME = "UPDATE print_shot_feedbacks SET answer = $2, answered_at = $3 WHERE id = $1"


@pytest.fixture
async def scene(db, factory, owner, stranger) -> dict[str, int]:
    """The print to PATCH, another print of the owner and one of the stranger, with frames."""
    made = {
        "own": await factory.print(owner[0]),
        "other": await factory.print(owner[0]),
        "foreign": await factory.print(stranger[0]),
    }
    owners = {**dict.fromkeys(OWN_FRAMES, "own"), 21: "other", 31: "foreign"}
    for frame_id, print_id in owners.items():
        await db.execute(
            "INSERT INTO print_shot_feedbacks (id, print_id, image_url) VALUES ($1, $2, $3)",
            frame_id,
            made[print_id],
            f"https://example.com/{frame_id}.jpg",
        )
    return made


async def reset_scene(db) -> None:
    await db.execute(RESET_PRINTS, LONG_AGO)
    await db.executemany(
        RESET_FRAME,
        [(frame_id, *start) for frame_id, start in {**OWN_FRAMES, **OTHER_FRAMES}.items()],
    )


async def table_rows(db) -> tuple[list, list]:
    prints = await db.fetch("SELECT * FROM prints ORDER BY id")
    frames = await db.fetch("SELECT * FROM print_shot_feedbacks ORDER BY id")
    return [dict(row) for row in prints], [dict(row) for row in frames]


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def expected_refusal(target: str, body) -> tuple[int, dict] | None:
    """The status and body the contract gives for a refused PATCH, or None if it is taken."""
    if target != "own":
        return 404, {"detail": "Not found."}
    outcome, found = read_change(body)
    if outcome == "refused":
        return 400, found
    strangers = sorted(frame_id for frame_id in found[1] if frame_id not in OWN_FRAMES)
    if strangers:
        messages = [
            f"{frame_id} is not the id of a feedback of this print." for frame_id in strangers
        ]
        return 400, {"printshotfeedback_set": messages}
    return None


def check_applied(before, after, scene, change, sent, answered) -> None:
    """The rows after a taken PATCH: the change applied to the own print, nothing else."""
    verdict, answers = change
    prints_before, frames_before = before
    prints_after, frames_after = after
    for old, new in zip(prints_before, prints_after, strict=True):
        if old["id"] != scene["own"]:
            assert new == old
            continue
        touched = verdict != UNSET or answers != {}
        assert new["alert_overwrite"] == (old["alert_overwrite"] if verdict == UNSET else verdict)
        assert (sent <= new["updated_at"] <= answered) if touched else new == old
    for old, new in zip(frames_before, frames_after, strict=True):
        if old["id"] not in answers:
            assert new == old
            continue
        answer = answers[old["id"]]
        assert new["answer"] == answer
        if answer is None:
            assert new["answered_at"] is None
        elif answer == old["answer"] and old["answered_at"] is not None:
            assert new["answered_at"] == old["answered_at"]
        else:
            assert sent <= new["answered_at"] <= answered


async def patch_and_check(
    client, db, owner, scene, target: str, body, text: str | None = None, defects=frozenset()
) -> None:
    """Sends ``body`` (or ``text``, which holds it with ``defects``) to the ``target`` print,
    and holds the answer and the rows to the contract."""
    await reset_scene(db)
    before = await table_rows(db)

    sent = now()
    response = await client.patch(
        f"{LIST}{scene[target]}/",
        data=json.dumps(body) if text is None else text,
        headers={**owner[1], **JSON_HEADERS},
    )
    answered = now()

    refusal = expected_refusal(target, body)
    event("refused" if refusal or defects else "taken")
    after = await table_rows(db)
    if defects and target == "own":
        assert response.status == 400, await response.text()
        assert await response.json() in refusals_of(defects)
        assert after == before
        return
    if refusal is not None:
        assert (response.status, await response.json()) == refusal
        assert after == before
        return
    assert response.status == 200, await response.text()
    change = read_change(body)[1]
    check_applied(before, after, scene, change, sent, answered)
    shown_frames = (await response.json())["printshotfeedback_set"]
    frames_after = [frame for frame in after[1] if frame["id"] in OWN_FRAMES]
    assert [(item["id"], item["answer"]) for item in shown_frames] == [
        (frame["id"], frame["answer"]) for frame in frames_after
    ]


#: Frame ids as bodies name them: the print's own more often than the others.
SCENE_FRAME_IDS = [*OWN_FRAMES, *OWN_FRAMES, *OTHER_FRAMES, NO_FRAME]


@THROUGH_THE_APP
@given(
    target=st.sampled_from(["own", "own", "own", "foreign"]),
    body=_bodies(CHARACTERS, st.floats(allow_nan=False, allow_infinity=False), SCENE_FRAME_IDS),
)
async def test_any_patch_body_is_applied_as_the_contract_reads_it_or_changes_nothing(
    client, db, owner, scene, target, body
):
    await patch_and_check(client, db, owner, scene, target, body)


@THROUGH_THE_APP
@given(body=_well_formed_bodies(SCENE_FRAME_IDS))
async def test_well_formed_patch_applies_exactly_or_refuses_frames_of_other_prints(
    client, db, owner, scene, body
):
    await patch_and_check(client, db, owner, scene, "own", body)


@THROUGH_THE_APP
@given(document=_documents(SCENE_FRAME_IDS))
async def test_any_json_text_as_a_patch_is_read_strictly_or_changes_nothing(
    client, db, owner, scene, document
):
    text, value, defects = document
    await patch_and_check(client, db, owner, scene, "own", value, text, defects)
