"""Schemathesis hooks for ``make fuzz``: aim generated requests at the demo user's real data.

Half of the print ids drawn are the demo user's live prints, and half of the logins made
to fit the document use the demo user's email and password, so that the run reaches
real prints, real frames and real sessions, not only 404s and 401s.

Loaded by schemathesis (SCHEMATHESIS_HOOKS) in the run that tests/fuzz.py starts, which
names in FUZZ_DATA a JSON file mapping each live print's id to its frames' ids, and in
FUZZ_TALLY a file where each answer's operation and status are written, one a line.

Two rules of the API are beyond what OpenAPI 3.1 can state, so schema-valid requests would
break them at random and be refused, rightly, with a 400: ``start`` and ``limit`` need
``sorting``, and the frames a PATCH answers must be that print's own, each listed once.
For requests generated as valid, the hooks keep those rules; requests generated as invalid
are left as they are. The refusals themselves are tested in tests/test_list.py and
tests/test_print.py.
"""

import json
import os
import zlib

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode

from service.demo import DEMO_EMAIL, DEMO_PASSWORD

with open(os.environ["FUZZ_DATA"], encoding="utf-8") as _file:
    FRAMES = {int(print_id): frames for print_id, frames in json.load(_file).items()}

TALLY_PATH = os.environ["FUZZ_TALLY"]

#: Live prints with frames first, so that PATCHes answer real frames; then the others.
PRINT_IDS = sorted(FRAMES, key=lambda print_id: (not FRAMES[print_id], print_id))


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    """Half of the print ids drawn are the demo user's real prints, not only 404s."""
    if not isinstance(path_parameters, dict) or "print_id" not in path_parameters:
        return st.just(path_parameters)
    real = st.sampled_from(PRINT_IDS).map(
        lambda print_id: {**path_parameters, "print_id": print_id}
    )
    return st.one_of(st.just(path_parameters), real)


@schemathesis.hook
def map_case(context, case):
    """Keeps the two rules above in requests generated as valid, and logs in as the demo."""
    meta = case.meta
    if meta is not None and meta.generation.mode is GenerationMode.POSITIVE:
        _fit_to_demo(case)
    return case


@schemathesis.hook
def before_add_examples(context, examples):
    """The document's own examples are valid requests too, but map_case does not see them."""
    for case in examples:
        _fit_to_demo(case)


def _fit_to_demo(case) -> None:
    query = case.query
    if isinstance(query, dict) and ("start" in query or "limit" in query):
        query.setdefault("sorting", "date_desc")

    if case.operation.path == "/api/v1/auth/login/" and isinstance(case.body, dict):
        email = case.body.get("email")
        # About half of the logins are the demo user's, chosen from the generated email so
        # that a run's seed replays it: a login that succeeds, and a session that logout ends.
        if isinstance(email, str) and zlib.crc32(email.encode("utf-8", "replace")) % 2:
            case.body.update(email=DEMO_EMAIL, password=DEMO_PASSWORD)

    if case.method.upper() == "PATCH" and isinstance(case.body, dict):
        print_id = _as_print_id((case.path_parameters or {}).get("print_id"))
        items = case.body.get("printshotfeedback_set")
        if isinstance(items, list) and print_id in FRAMES:
            frames = FRAMES[print_id]
            kept = items[: len(frames)]
            for item, frame_id in zip(kept, frames, strict=False):
                item["id"] = frame_id
            case.body["printshotfeedback_set"] = kept


def _as_print_id(value) -> int | None:
    """The id in a generated path parameter, which some phases give as a string."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


@schemathesis.hook
def after_call(context, case, response):
    """Notes the operation and status of each answer, so the run can show what it reached."""
    # One short line per append, so lines cannot mix should the run use several workers.
    with open(TALLY_PATH, "a", encoding="utf-8") as tally:
        tally.write(f"{case.operation.label}\t{response.status_code}\n")
