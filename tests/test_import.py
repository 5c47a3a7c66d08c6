"""The import document's checks, run in process with ``import_document`` on the test database.

Every refused document must leave the tables as they were; the command line that wraps
these calls is tested in test_cli.py.
"""

import copy
import datetime

import pytest

from service.auth import verify_password
from service.queries import Queries
from service.transfer import ImportDataError, import_document

#: The largest bigint, the largest id an import takes.
MAX_BIGINT = 9223372036854775807
TABLES = ("users", "api_tokens", "printers", "prints", "print_shot_feedbacks")
PRINT = "users[0].prints[0] (print 1201)"
FRAME = f"{PRINT}.printshotfeedback_set[0]"
#: An argon2 hash of "long enough secret", as ``printapi export`` writes one.
ARGON2_HASH = (
    "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$"
    "mY9JAkeNPSHsNifZ5KaoBor94h/i+KUtjk1QWrUC0a8"
)

#: One user with one printer, one print and one frame; no password, so nothing is hashed.
DOCUMENT = {
    "users": [
        {
            "email": "owner@example.com",
            "printers": [{"id": 7, "name": "MK4 left"}],
            "prints": [
                {
                    "id": 1201,
                    "printer": 7,
                    "filename": "benchy.gcode",
                    "started_at": "2026-03-01T12:00:00Z",
                    "video_url": "https://example.com/v/1201.mp4",
                    "printshotfeedback_set": [
                        {"id": 88, "image_url": "https://example.com/f/88.jpg"}
                    ],
                }
            ],
        }
    ]
}


def document(user=None, printer=None, item=None, frame=None) -> dict:
    """DOCUMENT with fields of its user, printer, print or frame changed."""
    changed = copy.deepcopy(DOCUMENT)
    user_json = changed["users"][0]
    user_json.update(user or {})
    user_json["printers"][0].update(printer or {})
    user_json["prints"][0]["printshotfeedback_set"][0].update(frame or {})
    user_json["prints"][0].update(item or {})
    return changed


async def count_rows(db) -> dict[str, int]:
    return {table: await db.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}


async def refused(db, changed: dict) -> str:
    """Imports a document that must be refused; the message, once the tables are checked."""
    with pytest.raises(ImportDataError) as info:
        await import_document(db, Queries(), changed)

    assert await count_rows(db) == dict.fromkeys(TABLES, 0)
    return str(info.value)


#: Every text field, as (where the message puts it, the document with ``value`` in it).
TEXT_FIELDS = [
    ("users[0].email", lambda value: document(user={"email": f"own{value}er@example.com"})),
    ("users[0].password", lambda value: document(user={"password": f"long {value} secret"})),
    ("users[0].password_hash", lambda value: document(user={"password_hash": f"$argon2{value}"})),
    ("users[0].printers[0].name", lambda value: document(printer={"name": f"MK4 {value}"})),
    (f"{PRINT}.filename", lambda value: document(item={"filename": f"benchy{value}.gcode"})),
    *(
        (f"{PRINT}.{name}", lambda value, name=name: document(item={name: f"https://x/{value}"}))
        for name in ("video_url", "tagged_video_url", "poster_url", "prediction_json_url")
    ),
    (f"{FRAME}.image_url", lambda value: document(frame={"image_url": f"https://x/{value}"})),
]


@pytest.mark.parametrize(("where", "make"), TEXT_FIELDS, ids=[w for w, _ in TEXT_FIELDS])
async def test_import_with_nul_in_text_field_is_refused_naming_field(db, where, make):
    message = await refused(db, make("\u0000"))

    assert message == f"{where}: must not contain the NUL character \\u0000"


@pytest.mark.parametrize(("where", "make"), TEXT_FIELDS, ids=[w for w, _ in TEXT_FIELDS])
async def test_import_with_lone_surrogate_in_text_field_is_refused_naming_field(db, where, make):
    message = await refused(db, make("\ud800"))

    assert message == f"{where}: must not contain the lone surrogate '\\ud800'"


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        # asyncpg would write these two as -infinity and infinity.
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ],
)
async def test_import_with_timestamp_outside_years_1_to_9999_in_utc_is_refused(db, value):
    message = await refused(db, document(item={"started_at": value}))

    assert message == (
        f"{PRINT}.started_at: must fall in the years 1 to 9999 in UTC, first and last instants "
        f"excluded, not {value!r}"
    )


async def test_import_keeps_timestamps_a_microsecond_inside_years_1_to_9999(db):
    changed = document(
        item={
            "started_at": "0001-01-01T05:00:00.000001+05:00",
            "finished_at": "9999-12-31T23:59:59.999998Z",
        }
    )

    await import_document(db, Queries(), changed)

    row = await db.fetchrow("SELECT started_at, finished_at FROM prints WHERE id = 1201")
    assert tuple(row) == (
        datetime.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=datetime.UTC),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999998, tzinfo=datetime.UTC),
    )


#: Ids given as a float or a bool: where the message puts each, the document, the value.
NOT_IDS = [
    pytest.param("users[0].printers[0]", document(printer={"id": 7.0}), 7.0, id="printer"),
    pytest.param("users[0].prints[0]", document(item={"id": 1201.0}), 1201.0, id="print"),
    pytest.param("users[0].prints[0]", document(item={"id": True}), True, id="print-bool"),
    pytest.param(f"{PRINT}.printer", document(item={"printer": 7.0}), 7.0, id="print.printer"),
    pytest.param(
        f"{PRINT}.printer", document(item={"printer": 900200.0}), 900200.0, id="unknown-printer"
    ),
    pytest.param(
        f"{PRINT}.printer", document(item={"printer": True}), True, id="print.printer-bool"
    ),
    pytest.param(FRAME, document(frame={"id": 88.0}), 88.0, id="frame"),
    pytest.param(
        f"{FRAME}.print_id", document(frame={"print_id": 1201.0}), 1201.0, id="frame.print_id"
    ),
]


@pytest.mark.parametrize(("where", "changed", "value"), NOT_IDS)
async def test_import_with_float_or_bool_for_id_is_refused_naming_it(db, where, changed, value):
    message = await refused(db, changed)

    assert message == f"{where}: id must be a positive integer, not {value!r}"


async def test_import_with_password_shorter_than_8_characters_is_refused(db):
    message = await refused(db, document(user={"password": "seven c"}))

    assert message == "users[0].password: must have at least 8 characters"


async def test_import_with_password_of_8_characters_lets_user_log_in_with_it(db):
    await import_document(db, Queries(), document(user={"password": "eight ch"}))

    password_hash = await db.fetchval("SELECT password_hash FROM users")
    assert verify_password(password_hash, "eight ch")


async def test_import_with_password_hash_not_argon2_is_refused(db):
    bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"

    message = await refused(db, document(user={"password_hash": bcrypt}))

    assert message == "users[0].password_hash: must be an argon2 hash ($argon2...)"


async def test_import_with_argon2_password_hash_lets_user_log_in(db):
    await import_document(db, Queries(), document(user={"password_hash": ARGON2_HASH}))

    password_hash = await db.fetchval("SELECT password_hash FROM users")
    assert password_hash == ARGON2_HASH
    assert verify_password(password_hash, "long enough secret")


async def test_import_with_both_password_and_password_hash_is_refused(db):
    changed = document(user={"password": "long enough secret", "password_hash": ARGON2_HASH})

    message = await refused(db, changed)

    assert message == "users[0]: has a password and a password_hash; give one of them"


async def test_import_with_email_ending_in_newline_is_refused(db):
    message = await refused(db, document(user={"email": "owner@example.com\n"}))

    assert message == "users[0]: email must be an email address, not 'owner@example.com\\n'"


async def test_import_of_frame_answered_at_without_answer_is_refused(db):
    message = await refused(db, document(frame={"answered_at": "2026-03-02T08:00:00Z"}))

    assert message == f"{FRAME}: has answered_at but no answer"


async def test_import_of_print_both_finished_and_cancelled_is_refused(db):
    changed = document(
        item={"finished_at": "2026-03-01T13:00:00Z", "cancelled_at": "2026-03-01T13:10:00Z"}
    )

    message = await refused(db, changed)

    assert message == (
        f"{PRINT}: has finished_at and cancelled_at; a print finishes or is cancelled, not both"
    )


async def test_import_of_print_with_largest_bigint_id_keeps_it(db):
    counts = await import_document(db, Queries(), document(item={"id": MAX_BIGINT}))

    assert counts == {"users": 1, "printers": 1, "prints": 1, "feedbacks": 1}
    assert await db.fetchval("SELECT filename FROM prints WHERE id = $1", MAX_BIGINT) == (
        "benchy.gcode"
    )


async def test_rows_made_after_import_leaving_a_table_empty_start_at_id_1(db, factory):
    await import_document(db, Queries(), {"users": [{"email": "owner@example.com"}]})

    user_id = await db.fetchval("SELECT id FROM users")
    printer_id = await factory.printer(user_id)
    print_id = await factory.print(user_id)

    assert (printer_id, print_id, await factory.feedback(print_id)) == (1, 1, 1)
