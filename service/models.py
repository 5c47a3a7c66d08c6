"""Rows of print_rows turned into the API's Print and PrintShotFeedback objects, and into JSON."""

import datetime
import enum
import json

import attrs


class AlertOverwrite(enum.StrEnum):
    """The user's verdict on a whole print."""

    FAILED = "FAILED"
    NOT_FAILED = "NOT_FAILED"


class Answer(enum.StrEnum):
    """The user's verdict on one time-lapse frame; UNANSWERED is a choice to leave it open."""

    LOOKS_BAD = "LOOKS_BAD"
    LOOKS_OK = "LOOKS_OK"
    UNANSWERED = "UNANSWERED"


def format_timestamp(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with microseconds and a Z, the one timestamp form the API writes."""
    if value.tzinfo is not datetime.UTC:  # asyncpg already gives UTC: the common case.
        value = value.astimezone(datetime.UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _timestamp_or_none(value: datetime.datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _optional(kind):
    return lambda value: None if value is None else kind(value)


@attrs.frozen
class PrintShotFeedback:
    """One frame of a print's time-lapse and the user's answer on it."""

    id: int
    print_id: int
    image_url: str
    answer: Answer | None = attrs.field(converter=_optional(Answer))
    answered_at: datetime.datetime | None

    @classmethod
    def from_record(cls, print_id: int, record: tuple) -> "PrintShotFeedback":
        """Builds one from an (id, image_url, answer, answered_at) record of print_rows.shots."""
        feedback_id, image_url, answer, answered_at = record
        return cls(feedback_id, print_id, image_url, answer, answered_at)


@attrs.frozen
class Print:
    """A print as the API shows it: the field names and order are the contract's."""

    id: int
    printer: int | None
    filename: str
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    cancelled_at: datetime.datetime | None
    uploaded_at: datetime.datetime | None
    alerted_at: datetime.datetime | None
    alert_acknowledged_at: datetime.datetime | None
    alert_muted_at: datetime.datetime | None
    paused_at: datetime.datetime | None
    video_url: str | None
    tagged_video_url: str | None
    poster_url: str | None
    prediction_json_url: str | None
    alert_overwrite: AlertOverwrite | None = attrs.field(converter=_optional(AlertOverwrite))
    printshotfeedback_set: tuple[PrintShotFeedback, ...] = ()

    @classmethod
    def from_row(cls, row) -> "Print":
        """Builds a Print from a row of the print_rows view."""
        return cls(
            id=row["id"],
            printer=row["printer_id"],
            filename=row["filename"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            cancelled_at=row["cancelled_at"],
            uploaded_at=row["uploaded_at"],
            alerted_at=row["alerted_at"],
            alert_acknowledged_at=row["alert_acknowledged_at"],
            alert_muted_at=row["alert_muted_at"],
            paused_at=row["paused_at"],
            video_url=row["video_url"],
            tagged_video_url=row["tagged_video_url"],
            poster_url=row["poster_url"],
            prediction_json_url=row["prediction_json_url"],
            alert_overwrite=row["alert_overwrite"],
            printshotfeedback_set=tuple(
                PrintShotFeedback.from_record(row["id"], shot) for shot in row["shots"]
            ),
        )

    def to_json(self) -> dict:
        """The Print as a JSON-ready dict.

        Written out field by field, 45% cheaper than attrs.asdict with a value serialiser
        (docs/performance.md); tests/test_models.py holds the two to the same output.
        """
        return {
            "id": self.id,
            "printer": self.printer,
            "filename": self.filename,
            "started_at": _timestamp_or_none(self.started_at),
            "finished_at": _timestamp_or_none(self.finished_at),
            "cancelled_at": _timestamp_or_none(self.cancelled_at),
            "uploaded_at": _timestamp_or_none(self.uploaded_at),
            "alerted_at": _timestamp_or_none(self.alerted_at),
            "alert_acknowledged_at": _timestamp_or_none(self.alert_acknowledged_at),
            "alert_muted_at": _timestamp_or_none(self.alert_muted_at),
            "paused_at": _timestamp_or_none(self.paused_at),
            "video_url": self.video_url,
            "tagged_video_url": self.tagged_video_url,
            "poster_url": self.poster_url,
            "prediction_json_url": self.prediction_json_url,
            "alert_overwrite": self.alert_overwrite and self.alert_overwrite.value,
            "printshotfeedback_set": [
                {
                    "id": shot.id,
                    "print_id": shot.print_id,
                    "image_url": shot.image_url,
                    "answer": shot.answer and shot.answer.value,
                    "answered_at": _timestamp_or_none(shot.answered_at),
                }
                for shot in self.printshotfeedback_set
            ],
        }


#: Every key of a Print's JSON; the writable ones are checked by the PATCH handler.
PRINT_FIELDS = frozenset(field.name for field in attrs.fields(Print))
FEEDBACK_FIELDS = frozenset(field.name for field in attrs.fields(PrintShotFeedback))


def dumps(value) -> str:
    """The API's JSON encoding: compact, UTF-8 kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
