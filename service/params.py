"""Checks what clients send (list parameters, PATCH bodies) before anything runs.

Every problem found is collected under the name of the parameter or field at fault, so one
400 tells the client everything that is wrong at once.
"""

import codecs
import enum
import functools
import json

import attrs
from multidict import MultiMapping
from yarl import URL

from service.errors import BadRequest
from service.models import FEEDBACK_FIELDS, PRINT_FIELDS, AlertOverwrite, Answer, dumps

MAX_LIMIT = 1000
#: The largest value of PostgreSQL's bigint, the type of every id and of OFFSET.
MAX_BIGINT = 2**63 - 1


def unstorable(text: str) -> str | None:
    """What keeps PostgreSQL from storing ``text`` (a NUL, or a lone surrogate, which has
    no UTF-8 form), or None when nothing does."""
    if "\x00" in text:
        return "the NUL character \\u0000"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"the lone surrogate {text[error.start]!r}"
    return None


class Filter(enum.StrEnum):
    CANCELLED = "cancelled"
    FINISHED = "finished"
    NEED_ALERT_OVERWRITE = "need_alert_overwrite"
    NEED_PRINT_SHOT_FEEDBACK = "need_print_shot_feedback"


class Sorting(enum.StrEnum):
    DATE_DESC = "date_desc"
    DATE_ASC = "date_asc"


@attrs.frozen
class ListParams:
    """What GET /api/v1/prints/ was asked for."""

    filter: Filter | None = None
    sorting: Sorting | None = None
    start: int = 0
    limit: int | None = None


def _integer(raw: str, low: int, high: int) -> int | str:
    """The integer in ``raw`` within [low, high], or the message saying why it is not."""
    if not raw.isascii() or not raw.isdigit():
        return "A whole number is required."
    # Leading zeros go first: int() refuses more than 4300 digits, zeros included.
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(high)):
        return f"Must be between {low} and {high}."
    value = int(digits)
    if not low <= value <= high:
        return f"Must be between {low} and {high}."
    return value


def parse_list_params(query: MultiMapping[str]) -> ListParams:
    """The parameters of a list request; raises BadRequest naming each one at fault."""
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name in ("filter", "sorting", "start", "limit"):
        given = query.getall(name, [])
        if len(given) > 1:
            errors[name] = ["Give this parameter once."]
        elif given:
            values[name] = given[0]

    parsed = {}
    if "filter" in values:
        parsed["filter"] = _choice_or_error(Filter, values["filter"], "filter", errors)
    if "sorting" in values:
        parsed["sorting"] = _choice_or_error(Sorting, values["sorting"], "sorting", errors)
    for name, low, high in (("start", 0, MAX_BIGINT), ("limit", 1, MAX_LIMIT)):
        if name not in values:
            continue
        if "sorting" not in values and "sorting" not in errors:
            errors[name] = ["Only valid together with sorting."]
            continue
        value = _integer(values[name], low, high)
        if isinstance(value, str):
            errors[name] = [value]
        else:
            parsed[name] = value

    if errors:
        raise BadRequest(errors)
    return ListParams(**parsed)


@functools.lru_cache(maxsize=1024)
def list_params_of(raw_query: str) -> ListParams:
    """``parse_list_params`` of a query string as sent (still percent-encoded), remembered:
    dashboards send the same few again and again. A refused one is not remembered."""
    return parse_list_params(URL.build(query_string=raw_query, encoded=True).query)


def _choice_or_error(kind, raw: str, name: str, errors: dict) -> enum.StrEnum | None:
    try:
        return kind(raw)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        errors[name] = [f"{_show(raw)} is not a valid choice; use one of: {choices}."]
        return None


class _NameGivenTwice(Exception):
    """Stops the JSON parser at the first object that holds a name twice."""

    def __init__(self, name: str) -> None:
        self.name = name


def _object_refusing_repeats(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) < len(pairs):
        seen = set()
        for name, _ in pairs:
            if name in seen:
                raise _NameGivenTwice(name)
            seen.add(name)
    return result


def _not_a_json_number(text: str):
    raise ValueError(f"{text} is not JSON")


class JsonTextError(ValueError):
    """Bytes that are not strict JSON text; the message says why, for a person to read."""

    def __init__(self, reason: str, *, repeated_name: str | None = None, encoding: bool = False):
        super().__init__(reason)
        self.repeated_name = repeated_name
        self.encoding = encoding


def loads_strict(raw: bytes | bytearray):
    """The JSON value of ``raw``; raises JsonTextError when it is not strict JSON text.

    RFC 8259 text is UTF-8 with no byte order mark. Python's parser would guess UTF-16 or
    UTF-32 from the first bytes, skip a mark, take NaN and Infinity, and keep the last of a
    name given twice where other parsers keep the first: text that other readers would read
    otherwise, or not at all, is refused rather than guessed at.
    """
    if raw.startswith(codecs.BOM_UTF8):
        raise JsonTextError("it begins with a byte order mark", encoding=True)
    # A NUL byte is nowhere in JSON written in UTF-8, and in every ASCII character of UTF-16.
    if b"\x00" in raw:
        raise JsonTextError("it holds a NUL byte, as UTF-16 and UTF-32 text do", encoding=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonTextError(f"byte {error.start} is not UTF-8", encoding=True) from None

    try:
        return json.loads(
            text, object_pairs_hook=_object_refusing_repeats, parse_constant=_not_a_json_number
        )
    except _NameGivenTwice as error:
        name = _show(error.name)
        raise JsonTextError(
            f"the name {name} is given twice in one object", repeated_name=name
        ) from None
    except RecursionError:
        raise JsonTextError("it is nested too deeply") from None
    except ValueError as error:
        raise JsonTextError(str(error)) from None


def parse_json_body(raw: bytes):
    """The JSON value of a request body; raises BadRequest when it is not strict JSON text."""
    try:
        return loads_strict(raw)
    except JsonTextError as error:
        if error.repeated_name is not None:
            message = f"The name {error.repeated_name} is given twice in one object."
        elif error.encoding:
            message = "The body must be UTF-8, with no byte order mark."
        else:
            message = "The body is not valid JSON."
        raise BadRequest({"non_field_errors": [message]}) from None


_UNSET = object()


@attrs.frozen
class PrintChange:
    """A checked PATCH body: the verdict to set (if sent) and the frame answers to set."""

    alert_overwrite: object = _UNSET  # an AlertOverwrite, None, or _UNSET when not sent
    answers: dict[int, Answer | None] = attrs.Factory(dict)

    @property
    def sets_alert_overwrite(self) -> bool:
        return self.alert_overwrite is not _UNSET


def parse_print_change(body) -> PrintChange:
    """A PATCH body checked against the contract; raises BadRequest naming each field at fault.

    Read-only fields of a Print are ignored, so a client may send back a Print it received.
    """
    if not isinstance(body, dict):
        raise BadRequest({"non_field_errors": ["The body must be a JSON object."]})

    errors: dict[str, list[str]] = {}
    for name in sorted(set(body) - PRINT_FIELDS):
        errors[name] = ["Not a field of a print."]

    change = {}
    if "alert_overwrite" in body:
        raw = body["alert_overwrite"]
        if raw is None:
            change["alert_overwrite"] = None
        elif isinstance(raw, str) and raw in AlertOverwrite.__members__:
            change["alert_overwrite"] = AlertOverwrite(raw)
        else:
            errors["alert_overwrite"] = [
                f"{_show(raw)} is not a valid choice; use FAILED, NOT_FAILED or null."
            ]

    if "printshotfeedback_set" in body:
        answers, messages = _parse_answers(body["printshotfeedback_set"])
        if messages:
            errors["printshotfeedback_set"] = messages
        else:
            change["answers"] = answers

    if errors:
        raise BadRequest(errors)
    return PrintChange(**change)


def _parse_answers(items) -> tuple[dict[int, Answer | None], list[str]]:
    if not isinstance(items, list):
        return {}, ['Must be a list of {"id": ..., "answer": ...} objects.']

    answers: dict[int, Answer | None] = {}
    listed: set[int] = set()  # every id seen, even on an item refused for its answer
    messages = []
    for index, item in enumerate(items):
        where = f"Item {index}"
        if not isinstance(item, dict):
            messages.append(f"{where}: must be an object with id and answer.")
            continue
        unknown = sorted(set(item) - FEEDBACK_FIELDS)
        if unknown:
            messages.append(f"{where}: {', '.join(unknown)} is not a field of a feedback.")
        feedback_id = item.get("id")
        if type(feedback_id) is not int or not 1 <= feedback_id <= MAX_BIGINT:
            messages.append(f"{where}: id must be the id of a feedback of this print.")
            continue
        if feedback_id in listed:
            messages.append(f"{where}: feedback {feedback_id} is listed twice.")
            continue
        listed.add(feedback_id)
        if "answer" not in item:
            messages.append(f"{where}: answer is required.")
            continue
        raw = item["answer"]
        if raw is None:
            answers[feedback_id] = None
        elif isinstance(raw, str) and raw in Answer.__members__:
            answers[feedback_id] = Answer(raw)
        else:
            messages.append(
                f"{where}: {_show(raw)} is not a valid answer; "
                "use LOOKS_BAD, LOOKS_OK, UNANSWERED or null."
            )
    return answers, messages


class _Written(str):
    """JSON text already written (a bracket, a comma, a name), as against a value to write."""


_DONE = object()


def _list_pieces(items: list):
    yield _Written("[")
    for index, item in enumerate(items):
        if index:
            yield _Written(",")
        yield item
    yield _Written("]")


def _object_pieces(members: dict):
    yield _Written("{")
    for index, (name, item) in enumerate(members.items()):
        yield _Written(("," if index else "") + dumps(name) + ":")
        yield item
    yield _Written("}")


def _show(value) -> str:
    """A short rendering of a client's value, in the JSON the client sent, for a message.

    Written piece by piece, with a stack of its own, and only as far as the message shows:
    a value nested as deep as the JSON parser allows would overflow json.dumps's recursion,
    and a long list would be written whole to show 40 characters of it.
    """
    text = ""
    unfinished = [iter([value])]  # the pieces still to write, one iterator per container
    while unfinished and len(text) <= 40:
        piece = next(unfinished[-1], _DONE)
        if piece is _DONE:
            unfinished.pop()
        elif isinstance(piece, _Written):
            text += piece
        elif isinstance(piece, list):
            unfinished.append(_list_pieces(piece))
        elif isinstance(piece, dict):
            unfinished.append(_object_pieces(piece))
        else:
            text += dumps(piece)
    return text if len(text) <= 40 else text[:37] + "..."
