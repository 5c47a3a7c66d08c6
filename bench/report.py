"""Turning a run's results into the table printed at the end and into docs/performance.md.

docs/performance.md has two parts. The text above MARKER is written by hand and kept as it
is by every run (the INTRO below is written only when the file has no marker yet); what
follows MARKER is replaced by each run.
"""

from pathlib import Path

import attrs

MARKER = "<!-- Everything below this line is written by `make bench`; edit the text above it. -->"

INTRO = """\
# Performance

`make bench` measures the service as production runs it (`printapi serve --workers N`, N the
number of CPUs) on a seeded scratch database, and beside it two ceilings measured in the same
run on the same machine, so that each number comes with what it could be at most.

The data: 200 users with 500 prints each (about 10% of prints carry 5 to 20 time-lapse
frames, part of them answered; most prints finished, some cancelled, some alerted) and one
print farm with 20,000 prints, imported with `printapi import` from a file that
`bench/seed.py` generates, the same every time.

## The rows

Each scenario is driven by wrk over 127.0.0.1 (2 threads, 32 connections, keep-alive, every
request with `Authorization: Bearer <token>`) for a fixed time after a short warm-up.

- **a. list page 1**: `GET /api/v1/prints/?start=0&limit=12&sorting=date_desc` for a user
  of 500 prints: what a dashboard polls.
- **b. deep page**: the same with `start=10000`, for the farm: a page far down a long
  history, which reads every index entry it skips.
- **c. feedback filter**: page 1 of `filter=need_print_shot_feedback&sorting=date_desc`
  for the user of a: it walks the history newest first, counting each print's frames and
  answers, until 12 prints qualify.
- **d. detail**: `GET /api/v1/prints/{id}/` of a print with frames.
- **e. PATCH verdict**: `PATCH /api/v1/prints/{id}/` with `{"alert_overwrite": ...}`,
  alternating FAILED and NOT_FAILED, all connections on the same print (so the row lock
  serialises them, as a user clicking on one print would).
- **f. conditional GET**: page 1 again with `If-None-Match` set to the ETag of a first
  plain GET; it must answer 304 Not Modified. "n/a (no ETag)" while the service sends none.

**req/s** is wrk's rate over the run, **p50** and **p99** its latency percentiles.
**non-2xx/3xx** counts answers that were neither (a 503 when no pooled connection came in
time, for instance), **socket errors** wrk's failed connects, reads and writes and its
timeouts (10 s); both should be 0. **statements** is how many statements one such request
sends to the database on a warm worker, counted by the real app's own statement counter
(`bench/roundtrips.py`); each database ceiling must send as many per set, and the run fails
when one does not, since the service changed and `bench/db_ceiling.py` must follow.

## The ceilings

- **framework ceiling**: a bare aiohttp app (`bench/ceiling_app.py`) with as many worker
  processes as the service, no middleware, no database, no access log, answering every GET
  with the bytes of scenario a. No answer of those bytes can be faster on this machine
  (f's 304 has no body, so it could come a little closer); **÷ framework** is the
  service's rate over it.
- **database ceiling**, one per scenario: the statements of `sql/` that the service sends
  to the database for one such request on a warm worker, in the same order, run by bare
  asyncpg loops with no HTTP: as many processes as workers, 32 concurrent loops in all,
  each process with the service's own pool (`service.db.create_pool`: ten connections, the
  same session settings and release), for the same time as wrk. A warm worker knows the
  token's owner and the user's data version from memory (`service/changes.py`), so a list
  page is one statement, a detail one (the ownership middleware's `get_print`), and a PATCH
  that load plus a transaction (lock, update with its version trigger, read back); the
  first request of a token on a worker costs more and is not what a steady load measures.
  One iteration is one request's worth, from taking a pooled connection to giving it back;
  **sets/s** counts them, and the pool's statement counter shows the round trips of each.
  **÷ database** is the service's rate over it. Scenario f sends no statement at all (its
  304 comes from memory), so it has no database ceiling.

A ratio near 1 says the service is as fast as that layer allows; a low ratio against both
says the time goes in the service's own Python (middleware, handlers, JSON). The machine is
shared with other work and the load generators run on the same CPUs as the service and
PostgreSQL, so rates of two runs can differ by tens of per cent; compare numbers of one run
with each other rather than with another run's.

## Below the table

- **deep page ÷ page 1**: how much a page 10,000 entries down costs over the first.
- **RSS of a worker** while it streams the farm's whole list (no `sorting`: 20,000 prints
  in batches of 500) a few times on one keep-alive connection: VmRSS of that worker from
  /proc before and after each request (`BENCH_RSS_REQUESTS`, default 5). The stream should
  keep memory bounded. Python's allocator settles for a while before it levels off: on this
  machine, 40 streams in a row grew a worker by about 4 MiB over the first 20 and not at all
  after, so a few hundred KiB per stream in a short run is not by itself a leak; a growth
  that keeps going over a long series would be.
- **p99 at half the peak**: scenario a at a constant rate of half its wrk rate, from a
  load generator that sends on schedule whether or not earlier answers came (wrk2 when
  Debian packages it, else `bench/openloop.py`), latency counted from when each request was
  due. This is the latency a client sees when the service is busy but not saturated.
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
