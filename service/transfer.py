"""Moving whole histories in and out: ``printapi import`` and ``printapi export``.

The format is the one API.md describes: users, each with printers and prints, each print
with its frames, every id kept. An import checks the whole document and every id against
the database before it writes, then writes everything in one transaction.
"""

import datetime
import re

import asyncpg
import attrs

from service.auth import EMAIL, MIN_PASSWORD_LENGTH, hash_password
from service.models import PRINT_FIELDS, AlertOverwrite, Answer, Print, format_timestamp
from service.params import MAX_BIGINT, unstorable
from service.progress import meter
from service.queries import Queries

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
#: The timestamp fields of a print in the import format, in the order insert_prints takes them.
TIMESTAMPS = (
    "started_at",
    "finished_at",
    "cancelled_at",
    "uploaded_at",
    "alerted_at",
    "alert_acknowledged_at",
    "alert_muted_at",
    "paused_at",
    "deleted_at",
)
#: Python's first and last instants, which asyncpg writes as -infinity and infinity and reads
#: back without a zone; an import takes only what lies between them.
_FIRST_INSTANT = datetime.datetime.min.replace(tzinfo=datetime.UTC)
_LAST_INSTANT = datetime.datetime.max.replace(tzinfo=datetime.UTC)
_URLS = ("video_url", "tagged_video_url", "poster_url", "prediction_json_url")
_PRINT_KEYS = PRINT_FIELDS | {"deleted_at"}
_FEEDBACK_KEYS = {"id", "print_id", "image_url", "answer", "answered_at"}
_USER_KEYS = {"email", "password", "password_hash", "printers", "prints"}


class ImportDataError(Exception):
    """The document cannot be imported; the message names the item at fault."""


@attrs.define
class _Batch:
    """The rows of an import, column by column, as the insert statements take them."""

    emails: list = attrs.Factory(list)
    password_hashes: list = attrs.Factory(list)
    printers: list = attrs.Factory(list)  # (id, email, name)
    prints: list = attrs.Factory(list)  # (email, column values...)
    feedbacks: list = attrs.Factory(list)  # (id, print_id, image_url, answer, answered_at)


def _id(value, where: str) -> int:
    if type(value) is not int or not 1 <= value <= MAX_BIGINT:
        raise ImportDataError(f"{where}: id must be a positive integer, not {value!r}")
    return value


def _text(value, where: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ImportDataError(f"{where}: must be a non-empty string, not {value!r}")
    _storable(value, where)
    return value


def _storable(value: str, where: str) -> None:
    """Refuses what a text column cannot hold."""
    problem = unstorable(value)
    if problem is not None:
        raise ImportDataError(f"{where}: must not contain {problem}")


def _timestamp(value, where: str) -> datetime.datetime | None:
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and _RFC3339.match(value):
        try:
            parsed = datetime.datetime.fromisoformat(value.upper())
        except ValueError:
            parsed = None  # Matches the pattern but is no real date, like February 30th.
    if parsed is None:
        raise ImportDataError(f"{where}: must be an RFC 3339 timestamp with a zone, not {value!r}")
    try:
        utc = parsed.astimezone(datetime.UTC)
    except OverflowError:
        utc = None
    if utc is None or not _FIRST_INSTANT < utc < _LAST_INSTANT:
        raise ImportDataError(
            f"{where}: must fall in the years 1 to 9999 in UTC, first and last instants "
            f"excluded, not {value!r}"
        )
    return parsed


def _choice(value, kind, where: str):
    if value is None:
        return None
    if not isinstance(value, str) or value not in kind.__members__:
        choices = ", ".join(kind.__members__)
        raise ImportDataError(f"{where}: must be one of {choices} or null, not {value!r}")
    return value


def _unknown_keys(item: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ImportDataError(f"{where}: unknown field {unknown[0]!r}")


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ImportDataError(f"{where}: must be an object")
    return value


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ImportDataError(f"{where}: must be a list")
    return value


def check_document(document) -> _Batch:
    """Checks a whole import document and returns its rows; raises ImportDataError."""
    users = _list(_object(document, "document").get("users"), "users")
    batch = _Batch()
    seen: dict[str, set] = {"email": set(), "printer": set(), "print": set(), "feedback": set()}

    def claim(kind: str, key, where: str) -> None:
        if key in seen[kind]:
            raise ImportDataError(f"{where}: {kind} {key} appears twice in the document")
        seen[kind].add(key)

    with meter("checking", _count_prints(users), "print") as checked:
        for user_index, user in enumerate(users):
            _check_user(user, f"users[{user_index}]", batch, claim, checked)
    return batch


def _count_prints(users: list) -> int:
    """How many prints the document holds, for the progress of checking it."""
    lists = (user.get("prints") for user in users if isinstance(user, dict))
    return sum(len(prints) for prints in lists if isinstance(prints, list))


def _check_user(user, where: str, batch: _Batch, claim, checked) -> None:
    _unknown_keys(_object(user, where), _USER_KEYS, where)
    email = user.get("email")
    if not isinstance(email, str) or not EMAIL.fullmatch(email):
        raise ImportDataError(f"{where}: email must be an email address, not {email!r}")
    _storable(email, f"{where}.email")
    claim("email", email.lower(), where)
    batch.emails.append(email)
    batch.password_hashes.append(_password_hash(user, where))

    own_printers = set()
    for index, printer in enumerate(_list(user.get("printers"), f"{where}.printers")):
        at = f"{where}.printers[{index}]"
        _unknown_keys(_object(printer, at), {"id", "name"}, at)
        printer_id = _id(printer.get("id"), at)
        claim("printer", printer_id, at)
        own_printers.add(printer_id)
        batch.printers.append(
            (printer_id, email, _text(printer.get("name"), f"{at}.name", required=True))
        )

    for index, item in enumerate(_list(user.get("prints"), f"{where}.prints")):
        at = f"{where}.prints[{index}]"
        _check_print(_object(item, at), at, email, own_printers, batch, claim)
        checked.update()


def _password_hash(user: dict, where: str) -> str | None:
    password = user.get("password")
    if password is None:
        password_hash = _text(user.get("password_hash"), f"{where}.password_hash", required=False)
        if password_hash is not None and not password_hash.startswith("$argon2"):
            raise ImportDataError(f"{where}.password_hash: must be an argon2 hash ($argon2...)")
        return password_hash

    if user.get("password_hash") is not None:
        raise ImportDataError(f"{where}: has a password and a password_hash; give one of them")
    if not isinstance(password, str):  # The value is not shown: it is a password.
        raise ImportDataError(f"{where}.password: must be a string")
    _storable(password, f"{where}.password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ImportDataError(
            f"{where}.password: must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    return hash_password(password)


def _check_print(item: dict, at: str, email: str, own_printers: set, batch: _Batch, claim):
    _unknown_keys(item, _PRINT_KEYS, at)
    print_id = _id(item.get("id"), at)
    at = f"{at} (print {print_id})"
    claim("print", print_id, at)

    printer_id = item.get("printer")
    if printer_id is not None:
        printer_id = _id(printer_id, f"{at}.printer")
        if printer_id not in own_printers:
            raise ImportDataError(f"{at}: printer {printer_id} is not a printer of {email}")

    columns = [
        print_id,
        printer_id,
        _text(item.get("filename"), f"{at}.filename", required=True),
        *(_timestamp(item.get(name), f"{at}.{name}") for name in TIMESTAMPS[:8]),
        *(_text(item.get(name), f"{at}.{name}", required=False) for name in _URLS),
        _choice(item.get("alert_overwrite"), AlertOverwrite, f"{at}.alert_overwrite"),
        _timestamp(item.get("deleted_at"), f"{at}.deleted_at"),
    ]
    if item.get("finished_at") is not None and item.get("cancelled_at") is not None:
        raise ImportDataError(
            f"{at}: has finished_at and cancelled_at; a print finishes or is cancelled, not both"
        )
    batch.prints.append((email, *columns))

    shots = _list(item.get("printshotfeedback_set"), f"{at}.printshotfeedback_set")
    for index, shot in enumerate(shots):
        shot_at = f"{at}.printshotfeedback_set[{index}]"
        _unknown_keys(_object(shot, shot_at), _FEEDBACK_KEYS, shot_at)
        feedback_id = _id(shot.get("id"), shot_at)
        claim("feedback", feedback_id, shot_at)
        shot_print_id = shot.get("print_id")
        if shot_print_id is not None and _id(shot_print_id, f"{shot_at}.print_id") != print_id:
            raise ImportDataError(f"{shot_at}: print_id {shot_print_id} is not {print_id}")
        image_url = _text(shot.get("image_url"), f"{shot_at}.image_url", required=True)
        answer = _choice(shot.get("answer"), Answer, f"{shot_at}.answer")
        answered_at = _timestamp(shot.get("answered_at"), f"{shot_at}.answered_at")
        if answered_at is not None and answer is None:
            raise ImportDataError(f"{shot_at}: has answered_at but no answer")
        batch.feedbacks.append((feedback_id, print_id, image_url, answer, answered_at))


def _columns(rows: list[tuple], count: int) -> list[list]:
    """Rows turned into ``count`` parallel lists, as unnest() takes them."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * count


async def import_document(connection: asyncpg.Connection, queries: Queries, document) -> dict:
    """Imports a whole document in one transaction, ids kept; returns counts per kind.

    Raises ImportDataError, naming it, for a malformed item or an id or email that already
    exists; nothing is written then.
    """
    batch = check_document(document)

    async with connection.transaction():
        conflicts = await connection.fetch(
            queries.find_import_conflicts.text,
            batch.emails,
            [row[0] for row in batch.printers],
            [row[1] for row in batch.prints],
            [row[0] for row in batch.feedbacks],
        )
        if conflicts:
            named = ", ".join(f"{row['kind']} {row['key']}" for row in conflicts[:10])
            more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
            raise ImportDataError(f"already in the database: {named}{more}")

        rows = len(batch.emails) + len(batch.printers) + len(batch.prints)
        with meter("writing", rows + len(batch.feedbacks), "row") as written:
            created = await connection.fetch(
                queries.insert_users.text, batch.emails, batch.password_hashes
            )
            written.update(len(created))
            user_ids = {row["email"]: row["id"] for row in created}
            printers = [(pid, user_ids[email], name) for pid, email, name in batch.printers]
            await connection.execute(queries.insert_printers.text, *_columns(printers, 3))
            written.update(len(printers))
            prints = [(row[1], user_ids[row[0]], *row[2:]) for row in batch.prints]
            await connection.execute(queries.insert_prints.text, *_columns(prints, 18))
            written.update(len(prints))
            await connection.execute(
                queries.insert_print_shot_feedbacks.text, *_columns(batch.feedbacks, 5)
            )
            written.update(len(batch.feedbacks))
            await connection.execute(queries.sync_id_sequences.text)

    return {
        "users": len(batch.emails),
        "printers": len(batch.printers),
        "prints": len(batch.prints),
        "feedbacks": len(batch.feedbacks),
    }


def _export_print(row) -> dict:
    """A print as the import format has it: the API's fields and deleted_at, frames unlinked."""
    item = Print.from_row(row).to_json()
    item["deleted_at"] = format_timestamp(row["deleted_at"]) if row["deleted_at"] else None
    for shot in item["printshotfeedback_set"]:
        del shot["print_id"]
    return item


async def export_document(connection: asyncpg.Connection, queries: Queries, write, dumps) -> None:
    """Writes every user's history in the import format through ``write``, print by print.

    Runs in one repeatable-read transaction, so the export is one consistent snapshot, and
    reads prints through a cursor, so memory stays bounded however long the history is.
    """
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        total = await connection.fetchval(queries.count_export_prints.text)
        with meter("exporting", total, "print", beside_output=True) as exported:
            await _export_users(connection, queries, write, dumps, exported)


async def _export_users(connection, queries: Queries, write, dumps, exported) -> None:
    write('{"users":[')
    users = await connection.fetch(queries.export_users.text)
    for user_index, user in enumerate(users):
        printers = await connection.fetch(queries.export_printers.text, user["id"])
        head = {
            "email": user["email"],
            "password_hash": user["password_hash"],
            "printers": [{"id": row["id"], "name": row["name"]} for row in printers],
        }
        write(("," if user_index else "") + dumps(head)[:-1] + ',"prints":[')
        separator = ""
        async for row in connection.cursor(queries.export_prints.text, user["id"]):
            write(separator + dumps(_export_print(row)))
            separator = ","
            exported.update()
        write("]}")
    write("]}\n")
