"""The benchmark's data set, as an import document: many ordinary users and one print farm.

Deterministic: the same seed gives the same bytes. Print ids follow creation time across all
users, as a live service hands them out, so one user's prints are spread over the whole
table rather than stored side by side. Nobody has a password: the harness uses API tokens.

    python -m bench.seed FILE    # writes the document, prints what the harness needs of it
"""

import datetime
import json
import random
import sys

import attrs

from service.transfer import TIMESTAMPS

#: Every timestamp lies in the two years before this instant, so the file never changes.
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SPAN = datetime.timedelta(days=730)
MEDIA = "https://media.bench.example.com"

_PARTS = (
    "benchy",
    "calibration_cube",
    "cable_clip",
    "phone_stand",
    "gridfinity_bin",
    "pi_case",
    "spool_holder",
    "planter",
    "fan_duct",
    "gear_set",
    "hinge",
    "knob",
    "bracket",
    "vase",
    "lithophane",
)
_MATERIALS = ("PLA", "PETG", "ABS", "ASA", "TPU")
_PRINTER_NAMES = ("Prusa MK4", "Bambu P1S", "Voron 2.4", "Ender 3", "Prusa Mini")


@attrs.frozen
class SeedInfo:
    """What the harness needs to know of the document it wrote."""

    users: int
    prints: int
    feedbacks: int
    list_email: str  # a user of ordinary size with a full page needing feedback
    list_need_feedback: int  # how many of that user's live prints need feedback
    big_email: str  # the print farm
    big_prints: int
    big_live_prints: int  # the farm's prints that are not deleted: the length of its list
    detail_print_id: int  # a live print of list_email with frames, for GET and PATCH


def _iso(value: datetime.datetime | None) -> str | None:
    # Whole seconds in UTC: isoformat is several times faster than strftime.
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _print(rng: random.Random, printers: list[int]) -> dict:
    """One print without ids: its times, outcome, alerts, media and frames (answers included).

    The mix: about 3% never start, three quarters of the rest finish and the others are
    cancelled; the failure detector alerts on about 15%; about 10% of prints carry 5 to 20
    time-lapse frames, a little over half of those partly or fully answered; 1% are deleted.
    """
    created = NOW - SPAN + datetime.timedelta(seconds=rng.randrange(int(SPAN.total_seconds())))
    item: dict = {
        "_created": created,
        "printer": rng.choice(printers) if rng.random() < 0.97 else None,
    }
    part, material = rng.choice(_PARTS), rng.choice(_MATERIALS)
    item["filename"] = f"{part}_{material}_0.{rng.choice((12, 16, 20, 28))}mm.gcode"
    if rng.random() < 0.03:
        return item  # Queued, then dropped: never started.

    started = created + datetime.timedelta(seconds=rng.randrange(5, 600))
    duration = datetime.timedelta(minutes=int(rng.lognormvariate(4.6, 0.8)) + 8)
    ended = started + duration
    item["started_at"] = started
    if ended > NOW:
        pass  # Still printing.
    elif rng.random() < 0.76:
        item["finished_at"] = ended
    else:
        ended = started + duration * rng.uniform(0.03, 0.95)
        item["cancelled_at"] = ended

    if rng.random() < 0.15:
        alerted = started + (ended - started) * rng.uniform(0.05, 0.9)
        item["alerted_at"] = alerted
        if rng.random() < 0.6:
            item["alert_acknowledged_at"] = alerted + datetime.timedelta(minutes=2)
        if rng.random() < 0.25:
            item["paused_at"] = alerted + datetime.timedelta(seconds=20)
        if rng.random() < 0.1:
            item["alert_muted_at"] = alerted + datetime.timedelta(minutes=4)
        if rng.random() < 0.5:
            item["alert_overwrite"] = rng.choice(("FAILED", "NOT_FAILED"))
    elif rng.random() < 0.05:
        item["alert_overwrite"] = "NOT_FAILED"

    ended_ok = ended <= NOW
    if ended_ok and rng.random() < 0.30:
        item["uploaded_at"] = ended + datetime.timedelta(minutes=3)
    if ended_ok and rng.random() < 0.105:
        item["uploaded_at"] = ended + datetime.timedelta(minutes=3)
        reviewed = rng.random() < 0.55
        frames = []
        for _ in range(rng.randint(5, 20)):
            answer = None
            if reviewed and rng.random() < 0.8:
                answer = rng.choices(("LOOKS_OK", "LOOKS_BAD", "UNANSWERED"), (6, 3, 1))[0]
            frames.append((answer, item["uploaded_at"] + datetime.timedelta(hours=5)))
        item["_frames"] = frames
    if ended_ok and rng.random() < 0.01:
        item["deleted_at"] = ended + datetime.timedelta(days=rng.randint(1, 30))
    return item


def _finish(item: dict, print_id: int, next_feedback_id: int) -> tuple[dict, int]:
    """The print as the import format has it, ids given; returns it and the next frame id."""
    out = {"id": print_id, "printer": item["printer"], "filename": item["filename"]}
    for name in TIMESTAMPS:
        if name in item:
            out[name] = _iso(item[name])
    if "alert_overwrite" in item:
        out["alert_overwrite"] = item["alert_overwrite"]
    if "uploaded_at" in item:
        base = f"{MEDIA}/timelapses/{print_id}"
        out["video_url"] = f"{base}/video.mp4"
        out["poster_url"] = f"{base}/poster.jpg"
    frames = item.get("_frames", ())
    if frames:
        base = f"{MEDIA}/timelapses/{print_id}"
        out["tagged_video_url"] = f"{base}/tagged.mp4"
        out["prediction_json_url"] = f"{base}/predictions.json"
        shots = []
        for answer, answered_at in frames:
            shots.append(
                {
                    "id": next_feedback_id,
                    "image_url": f"{base}/frames/{next_feedback_id}.jpg",
                    "answer": answer,
                    "answered_at": _iso(answered_at) if answer else None,
                }
            )
            next_feedback_id += 1
        out["printshotfeedback_set"] = shots
    return out, next_feedback_id


def _needs_feedback(item: dict) -> bool:
    frames = item.get("printshotfeedback_set", ())
    live = item.get("deleted_at") is None
    return live and bool(frames) and all(shot["answer"] is None for shot in frames)


def build(
    seed: int = 20260101, users: int = 200, prints_per_user: int = 500, big_prints: int = 20_000
) -> tuple[dict, SeedInfo]:
    """The import document and what the harness needs of it."""
    rng = random.Random(seed)
    owners = [f"user{index:03d}@bench.example.com" for index in range(users)]
    owners.append("farm@bench.example.com")
    counts = [prints_per_user] * users + [big_prints]

    next_printer_id = 1
    documents = []
    pending = []  # (created, owner index, item)
    for index, (email, count) in enumerate(zip(owners, counts, strict=True)):
        printer_count = 12 if count == big_prints else rng.randint(1, 4)
        printers = list(range(next_printer_id, next_printer_id + printer_count))
        next_printer_id += printer_count
        documents.append(
            {
                "email": email,
                "printers": [
                    {"id": pid, "name": f"{rng.choice(_PRINTER_NAMES)} #{n + 1}"}
                    for n, pid in enumerate(printers)
                ],
                "prints": [],
            }
        )
        for _ in range(count):
            item = _print(rng, printers)
            pending.append((item["_created"], index, item))

    # Ids in creation order over all users, ties broken by owner: as a live service numbers.
    pending.sort(key=lambda entry: (entry[0], entry[1]))
    feedback_id = 1
    for print_id, (_, index, item) in enumerate(pending, start=1):
        finished, feedback_id = _finish(item, print_id, feedback_id)
        documents[index]["prints"].append(finished)

    # The list user: the ordinary user with the most prints waiting for feedback.
    best = max(range(users), key=lambda i: (sum(map(_needs_feedback, documents[i]["prints"])), -i))
    chosen = documents[best]
    framed = [
        p
        for p in chosen["prints"]
        if p.get("printshotfeedback_set") and p.get("deleted_at") is None
    ]
    detail = max(framed, key=lambda p: (p.get("started_at") or "", p["id"]))
    info = SeedInfo(
        users=len(owners),
        prints=len(pending),
        feedbacks=feedback_id - 1,
        list_email=chosen["email"],
        list_need_feedback=sum(map(_needs_feedback, chosen["prints"])),
        big_email=owners[-1],
        big_prints=big_prints,
        big_live_prints=sum(p.get("deleted_at") is None for p in documents[-1]["prints"]),
        detail_print_id=detail["id"],
    )
    return {"users": documents}, info


def write(path, **options) -> SeedInfo:
    """Writes the document to ``path``; returns what the harness needs of it."""
    document, info = build(**options)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(document, file, separators=(",", ":"))
    return info


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.seed FILE")
    print(json.dumps(attrs.asdict(write(sys.argv[1])), indent=2))
