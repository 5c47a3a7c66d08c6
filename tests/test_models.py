"""The JSON of a Print: the hand-written serialiser agrees with attrs' generic one."""

import datetime
import enum

import attrs

from service.models import Print, PrintShotFeedback, dumps, format_timestamp

WHEN = datetime.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=datetime.UTC)


def _print(**overrides) -> Print:
    fields = dict(
        id=7,
        printer=3,
        filename="benchy.gcode",
        started_at=WHEN,
        finished_at=WHEN,
        cancelled_at=None,
        uploaded_at=WHEN,
        alerted_at=WHEN,
        alert_acknowledged_at=None,
        alert_muted_at=WHEN,
        paused_at=None,
        video_url="v",
        tagged_video_url=None,
        poster_url="p",
        prediction_json_url=None,
        alert_overwrite="FAILED",
        printshotfeedback_set=(
            PrintShotFeedback(1, 7, "a.jpg", "LOOKS_OK", WHEN),
            PrintShotFeedback(2, 7, "b.jpg", None, None),
        ),
    )
    return Print(**{**fields, **overrides})


def _generic(item: Print) -> str:
    """The JSON attrs makes of every field, with the API's timestamp and enum forms."""

    def serialise(_instance, _field, value):
        if isinstance(value, datetime.datetime):
            return format_timestamp(value)
        return value.value if isinstance(value, enum.Enum) else value

    return dumps(attrs.asdict(item, value_serializer=serialise))


def test_full_print_serialises_as_attrs_would():
    item = _print()

    assert dumps(item.to_json()) == _generic(item)


def test_bare_print_serialises_as_attrs_would():
    item = _print(alert_overwrite=None, started_at=None, printshotfeedback_set=())

    assert dumps(item.to_json()) == _generic(item)


def test_timestamps_and_enums_take_their_wire_form():
    json = _print().to_json()

    assert json["started_at"] == "2026-03-01T12:00:00.250000Z"
    assert json["alert_overwrite"] == "FAILED"
    assert json["printshotfeedback_set"][0]["answer"] == "LOOKS_OK"
