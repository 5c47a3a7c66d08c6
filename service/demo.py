"""Realistic demo data: one user, several printers, two years of prints, made reproducibly.

The mix follows what a busy hobby farm sees: most prints finish, some are cancelled, a few
fail to start; the failure detector alerts on some, pauses a few, and the user has judged
part of those; about a fifth have a time-lapse, some with frames waiting for a verdict.
"""

import datetime
import random

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
MEDIA = "https://media.example.com"

_PRINTERS = ["Prusa MK4 (left)", "Prusa MK4 (right)", "Bambu X1C", "Voron 2.4", "Ender 3 V2"]
_PARTS = [
    "benchy",
    "calibration_cube",
    "cable_clip",
    "phone_stand",
    "gridfinity_bin_2x3",
    "raspberry_pi_case",
    "spool_holder",
    "planter",
    "lithophane",
    "filament_guide",
    "headphone_hook",
    "drawer_handle",
    "gear_set",
    "vase_mode_spiral",
    "fan_duct",
]
_MATERIALS = ["PLA", "PETG", "ABS", "ASA", "TPU"]


def demo_document(
    print_count: int = 3000, seed: int = 2026, now: datetime.datetime | None = None
) -> dict:
    """An import document holding the demo user's history; the same seed gives the same data."""
    rng = random.Random(seed)
    now = now or datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    first = now - datetime.timedelta(days=730)
    printers = [{"id": index + 1, "name": name} for index, name in enumerate(_PRINTERS)]

    starts = sorted(
        first + datetime.timedelta(seconds=rng.randrange(730 * 24 * 3600))
        for _ in range(print_count)
    )
    prints = []
    feedback_id = 0
    for index, started_at in enumerate(starts):
        print_id = index + 1
        item, frames = _demo_print(rng, print_id, started_at, now, printers)
        shots = []
        for _ in range(frames):
            feedback_id += 1
            shots.append(_demo_frame(rng, print_id, feedback_id, item))
        item["printshotfeedback_set"] = shots
        prints.append(item)

    return {
        "users": [
            {
                "email": DEMO_EMAIL,
                "password": DEMO_PASSWORD,
                "printers": printers,
                "prints": prints,
            }
        ]
    }


def _iso(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _demo_print(rng, print_id, started_at, now, printers) -> tuple[dict, int]:
    part = rng.choice(_PARTS)
    material = rng.choice(_MATERIALS)
    duration = datetime.timedelta(minutes=rng.randint(12, 18 * 60))
    ended_at = started_at + duration
    roll = rng.random()
    item = {
        "id": print_id,
        "printer": rng.choice(printers)["id"],
        "filename": f"{part}_{material}_0.{rng.choice([12, 16, 20, 28])}mm.gcode",
        "started_at": _iso(started_at),
    }

    if ended_at > now:  # Still printing.
        pass
    elif roll < 0.74:
        item["finished_at"] = _iso(ended_at)
    elif roll < 0.97:
        item["cancelled_at"] = _iso(started_at + duration * rng.uniform(0.02, 0.9))
    else:  # Never started: queued and dropped.
        item["started_at"] = None

    frames = 0
    if item["started_at"] and rng.random() < 0.16:
        alerted_at = started_at + duration * rng.uniform(0.05, 0.8)
        item["alerted_at"] = _iso(alerted_at)
        if rng.random() < 0.6:
            item["alert_acknowledged_at"] = _iso(alerted_at + datetime.timedelta(minutes=3))
        if rng.random() < 0.3:
            item["paused_at"] = _iso(alerted_at + datetime.timedelta(seconds=30))
        if rng.random() < 0.1:
            item["alert_muted_at"] = _iso(alerted_at + datetime.timedelta(minutes=5))
        if rng.random() < 0.55:
            item["alert_overwrite"] = rng.choice(["FAILED", "NOT_FAILED"])
    elif item["started_at"] and rng.random() < 0.2:
        item["alert_overwrite"] = "NOT_FAILED"

    if (item.get("finished_at") or item.get("cancelled_at")) and rng.random() < 0.22:
        base = f"{MEDIA}/timelapses/{print_id}"
        item["uploaded_at"] = _iso(ended_at + datetime.timedelta(minutes=2))
        item["video_url"] = f"{base}/video.mp4"
        item["poster_url"] = f"{base}/poster.jpg"
        if item.get("alerted_at"):
            item["tagged_video_url"] = f"{base}/tagged.mp4"
            item["prediction_json_url"] = f"{base}/predictions.json"
            frames = rng.randint(5, 20)
    return item, frames


def _demo_frame(rng, print_id, feedback_id, item) -> dict:
    answered = item.get("alert_overwrite") is not None and rng.random() < 0.7
    answer = rng.choice(["LOOKS_BAD", "LOOKS_OK", "LOOKS_OK", "UNANSWERED"]) if answered else None
    return {
        "id": feedback_id,
        "image_url": f"{MEDIA}/timelapses/{print_id}/frames/{feedback_id}.jpg",
        "answer": answer,
        "answered_at": item["uploaded_at"] if answered else None,
    }
