"""Turning a run's results into the table printed at the end and into docs/performance.md.

docs/performance.md has two parts. The text above MARKER is written by hand and kept as it
is by every run (the short INTRO below is written only when the file has no marker yet);
what follows MARKER is replaced by each run.
"""

from pathlib import Path

import attrs

MARKER = "<!-- Everything below this line is written by `make bench`; edit the text above it. -->"

INTRO = """\
# Performance

What `make bench` measured on this machine. The repository's docs/performance.md explains
each row and ceiling above its marker; this file was started without that text.
"""


@attrs.define
class Measured:
    """Rate and latency of one measured run, from wrk or from the bench's own loops."""

    rate: float
    p50_ms: float
    p99_ms: float
    errors: int = 0  # non-2xx/3xx answers, or failed iterations of a database ceiling
    socket_errors: int = 0  # wrk: connect, read and write errors, and timeouts
    statements: float | None = None  # database ceilings: round trips per set


@attrs.define
class Row:
    key: str
    name: str
    request: str
    measured: Measured | None  # None: not measured, ``note`` says why
    note: str = ""
    db_key: str | None = None  # None: no statement reaches the database
    statements: float | None = None  # the service's statements per request, warm


def fmt_ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def fmt_ratio(numerator: float, denominator: float | None) -> str:
    if not denominator:
        return "n/a"
    return f"{numerator / denominator:.2f}"


def table(rows: list[Row], framework: Measured, database: dict[str, Measured]) -> list[str]:
    lines = [
        "| scenario | req/s | p50 | p99 | non-2xx/3xx | socket errors"
        " | statements | ÷ framework | ÷ database |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.measured is None:
            lines.append(f"| {row.key}. {row.name} | {row.note} | | | | | | | |")
            continue
        m = row.measured
        db = database.get(row.db_key) if row.db_key else None
        by_db = fmt_ratio(m.rate, db.rate) if db else "no statement"
        statements = "?" if row.statements is None else f"{row.statements:.1f}"
        lines.append(
            f"| {row.key}. {row.name} | {m.rate:,.0f} | {fmt_ms(m.p50_ms)} | {fmt_ms(m.p99_ms)}"
            f" | {m.errors} | {m.socket_errors} | {statements}"
            f" | {fmt_ratio(m.rate, framework.rate)} | {by_db} |"
        )
    notes = [f"{row.key}: {row.note}" for row in rows if row.measured and row.note]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes) + "."]
    return lines


def ceiling_table(framework: Measured, database: dict[str, Measured], names: dict) -> list[str]:
    lines = [
        "| ceiling | req/s or sets/s | p50 | p99 | errors | statements per set |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| framework: bare aiohttp, the bytes of a | {framework.rate:,.0f}"
        f" | {fmt_ms(framework.p50_ms)} | {fmt_ms(framework.p99_ms)}"
        f" | {framework.errors + framework.socket_errors} | |",
    ]
    for key, m in database.items():
        per_set = "" if m.statements is None else f"{m.statements:.1f}"
        lines.append(
            f"| database: {names.get(key, key)} | {m.rate:,.0f} | {fmt_ms(m.p50_ms)}"
            f" | {fmt_ms(m.p99_ms)} | {m.errors} | {per_set} |"
        )
    return lines


def write(path: Path, generated: str) -> None:
    """Keeps the hand-written text above MARKER (or writes INTRO), and replaces the rest."""
    intro = INTRO
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if MARKER in text:
            intro = text.split(MARKER, 1)[0]
    path.write_text(intro.rstrip("\n") + "\n\n" + MARKER + "\n\n" + generated, encoding="utf-8")
