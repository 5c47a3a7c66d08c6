"""The database going away under load, and coming back: the service answers, heals, loses nothing.

The test runs its own PostgreSQL (tests/own_postgres.py), the real ``printapi serve`` against
it, and clients that list, read, poll with ETags and PATCH. Mid-load it stops PostgreSQL
(fast shutdown, by the postmaster's pid), keeps the load going, and starts it again on the
same directory and port.

Two more freeze server processes with SIGSTOP, as a hung server or a network cut does: the
whole server, which a request must give up on; and only the change feed's listener, whose
silence must not keep 304s stale.
"""

import asyncio
import contextlib
import json
import os
import signal
import time

import aiohttp
import asyncpg
import attrs
import psutil

from service import errors
from service.app import create_app
from service.auth import new_token, token_digest
from service.changes import LISTENER_NAME, PROBE_TIMEOUT, RECONNECT_DELAY
from service.db import COMMAND_TIMEOUT_MARGIN
from service.migrate import migrate
from service.queries import Queries
from service.settings import Settings
from tests.conftest import TEST_SECRET_KEY
from tests.own_postgres import OwnPostgres
from tests.test_cli import Cli, free_port, output, running, stop, wait_until_answering

ACQUIRE_TIMEOUT = 1.0
STATEMENT_TIMEOUT = 2.0
#: What an answer may take beyond the acquire timeout, on two cores shared with other runs.
ANSWER_MARGIN = 1.5
#: Seconds the service may take to answer 200 again once PostgreSQL takes connections.
RECOVERY_LIMIT = 5.0
CLIENTS = 4
#: Each PATCH goes to a print of its own, so every PATCH's outcome stays readable at the end.
PRINTS_PER_CLIENT = 300
FRAMES = 3
UP_SECONDS = 2.0
DOWN_SECONDS = 3.0
AFTER_SECONDS = 1.5
UNREACHABLE = {"detail": "The database cannot be reached right now; try again shortly."}
ANSWERS = ["LOOKS_BAD", "LOOKS_OK", "UNANSWERED"]
LIST = "/api/v1/prints/?sorting=date_desc&limit=20"


class OutageCli(Cli):
    """The console script with short timeouts, a small pool, and every request logged."""

    def env(self, database_url: str | None) -> dict[str, str]:
        return {
            **super().env(database_url),
            "PRINTAPI_ACQUIRE_TIMEOUT": str(ACQUIRE_TIMEOUT),
            "PRINTAPI_STATEMENT_TIMEOUT": str(STATEMENT_TIMEOUT),
            "PRINTAPI_LOCK_TIMEOUT": str(STATEMENT_TIMEOUT / 2),
            "PRINTAPI_POOL_MAX_SIZE": "4",
            "PRINTAPI_LOG_LEVEL": "INFO",
        }


@attrs.frozen
class Answer:
    """One request of the load and what came back; status None when no HTTP answer came."""

    kind: str
    status: int | None
    started: float
    ended: float
    body: str
    retry_after: str | None
    etag: str | None
    print_id: int | None = None
    #: For a PATCH: which client sent it, and its number among that client's PATCHes.
    client: int | None = None
    number: int | None = None


def patch_values(client: int, number: int) -> tuple[str, list[str]]:
    """The verdict and frame answers PATCH ``number`` of ``client`` writes.

    Every field is set by the PATCH and none keeps its seeded null, so a PATCH half
    applied shows as a mix of nulls and these values.
    """
    verdict = "FAILED" if (client + number) % 2 else "NOT_FAILED"
    return verdict, [ANSWERS[(client + number + frame) % 3] for frame in range(FRAMES)]


def state_of(body: dict) -> tuple[str | None, list[str | None]]:
    return body["alert_overwrite"], [shot["answer"] for shot in body["printshotfeedback_set"]]


UNTOUCHED = (None, [None] * FRAMES)


@attrs.frozen
class Seeded:
    """What the test database holds at the start: two users' tokens, prints and frames."""

    load_token: str
    observer_token: str
    #: The load user's prints, each with its frames' ids in id order.
    frames: dict[int, list[int]]
    observer_print: int


async def seed(url: str) -> Seeded:
    """Migrates the database and makes a load user, an observer user, prints and frames."""
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection, Queries())
        made = {}
        for name, count in (("load", CLIENTS * PRINTS_PER_CLIENT), ("observer", 1)):
            user_id = await connection.fetchval(
                "INSERT INTO users (email) VALUES ($1) RETURNING id", f"{name}@example.com"
            )
            token = new_token()
            await connection.execute(
                "INSERT INTO api_tokens (user_id, token_hash) VALUES ($1, $2)",
                user_id,
                token_digest(token),
            )
            await connection.execute(
                "INSERT INTO prints (user_id, filename, started_at)"
                " SELECT $1, 'part-' || n || '.gcode', now() - n * interval '1 minute'"
                " FROM generate_series(1, $2) AS n",
                user_id,
                count,
            )
            await connection.execute(
                "INSERT INTO print_shot_feedbacks (print_id, image_url)"
                " SELECT p.id, 'https://example.com/f.jpg'"
                " FROM prints AS p, generate_series(1, $2) WHERE p.user_id = $1",
                user_id,
                FRAMES,
            )
            rows = await connection.fetch(
                "SELECT p.id, array_agg(f.id ORDER BY f.id) AS frames"
                " FROM prints AS p JOIN print_shot_feedbacks AS f ON f.print_id = p.id"
                " WHERE p.user_id = $1 GROUP BY p.id ORDER BY p.id",
                user_id,
            )
            made[name] = (token, {row["id"]: list(row["frames"]) for row in rows})
        return Seeded(made["load"][0], made["observer"][0], made["load"][1], *made["observer"][1])
    finally:
        await connection.close()


async def timed(session: aiohttp.ClientSession, kind: str, method: str, url: str, **kwargs):
    """The request's Answer; a client-side error or timeout is an Answer with no status."""
    started = time.monotonic()
    try:
        async with session.request(method, url, **kwargs) as response:
            body = await response.text()
            status, headers = response.status, response.headers
    except (aiohttp.ClientError, TimeoutError) as error:
        status, body, headers = None, repr(error), {}
    return Answer(
        kind,
        status,
        started,
        time.monotonic(),
        body,
        headers.get("Retry-After"),
        headers.get("ETag"),
    )


async def load_client(
    client: int, base: str, seeded: Seeded, done: asyncio.Event, answers: list
) -> None:
    """Lists, polls with the list's ETag, reads the last print it changed, PATCHes the next.

    Bounded: one PATCH per print of its share, and it stops early when ``done`` is set.
    """
    headers = {"Authorization": f"Bearer {seeded.load_token}"}
    timeout = aiohttp.ClientTimeout(total=ACQUIRE_TIMEOUT + ANSWER_MARGIN + 5)
    mine = sorted(seeded.frames)[client * PRINTS_PER_CLIENT :][:PRINTS_PER_CLIENT]
    etag = None
    async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as session:
        for number, print_id in enumerate(mine):
            if done.is_set():
                return
            listed = await timed(session, "list", "GET", LIST)
            etag = listed.etag or etag
            polled = await timed(
                session, "poll", "GET", LIST, headers={"If-None-Match": etag} if etag else {}
            )
            earlier = mine[max(number - 1, 0)]
            read = await timed(session, "detail", "GET", f"/api/v1/prints/{earlier}/")

            verdict, frame_answers = patch_values(client, number)
            change = {
                "alert_overwrite": verdict,
                "printshotfeedback_set": [
                    {"id": frame, "answer": answer}
                    for frame, answer in zip(seeded.frames[print_id], frame_answers, strict=True)
                ],
            }
            patched = await timed(
                session, "patch", "PATCH", f"/api/v1/prints/{print_id}/", json=change
            )
            answers.extend(
                [
                    listed,
                    polled,
                    attrs.evolve(read, print_id=earlier),
                    attrs.evolve(patched, print_id=print_id, number=number, client=client),
                ]
            )
            await asyncio.sleep(0.05)


def written_by_patch(seeded: Seeded, print_id: int) -> tuple[str, list[str]]:
    """The state the one PATCH of ``print_id`` writes, when it is applied."""
    index = sorted(seeded.frames).index(print_id)
    return patch_values(index // PRINTS_PER_CLIENT, index % PRINTS_PER_CLIENT)


async def stored_states(url: str) -> dict[int, tuple[str | None, list[str | None]]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT p.id, p.alert_overwrite, array_agg(f.answer ORDER BY f.id) AS answers,"
            " bool_and((f.answer IS NULL) = (f.answered_at IS NULL)) AS dated"
            " FROM prints AS p JOIN print_shot_feedbacks AS f ON f.print_id = p.id"
            " GROUP BY p.id"
        )
    finally:
        await connection.close()
    assert all(row["dated"] for row in rows)
    return {row["id"]: (row["alert_overwrite"], list(row["answers"])) for row in rows}


async def probe_until_recovered(base: str, seeded: Seeded, etag: str) -> list[Answer]:
    """Polls the observer's list with its ETag from before the outage until a 200 comes back.

    Every 50 ms, for at most RECOVERY_LIMIT seconds.
    """
    headers = {"Authorization": f"Bearer {seeded.observer_token}", "If-None-Match": etag}
    timeout = aiohttp.ClientTimeout(total=ACQUIRE_TIMEOUT + ANSWER_MARGIN + 5)
    probes = []
    deadline = time.monotonic() + RECOVERY_LIMIT
    async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as session:
        while time.monotonic() < deadline:
            probes.append(await timed(session, "probe", "GET", LIST))
            if probes[-1].status not in (503, None):
                break
            await asyncio.sleep(0.05)
    return probes


async def test_database_stopped_under_load_answers_503_heals_alone_and_loses_no_patch(tmp_path):
    postgres = OwnPostgres()
    try:
        postgres.start()
        await postgres.wait_ready()
        seeded = await seed(postgres.url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cli = OutageCli(postgres.url, tmp_path)
        command = ("serve", "--host", "127.0.0.1", "--port", str(port))
        with running(cli.start(*command)) as server:
            async with aiohttp.ClientSession() as session:
                await wait_until_answering(server, session, base + LIST)
                observer = {"Authorization": f"Bearer {seeded.observer_token}"}
                async with session.get(base + LIST, headers=observer) as response:
                    assert response.status == 200, await response.text()
                    observer_etag = response.headers["ETag"]

            done = asyncio.Event()
            answers: list[Answer] = []
            clients = [
                asyncio.create_task(load_client(n, base, seeded, done, answers))
                for n in range(CLIENTS)
            ]
            try:
                await asyncio.sleep(UP_SECONDS)
                stopping = time.monotonic()
                await asyncio.to_thread(postgres.stop_fast)
                await asyncio.sleep(DOWN_SECONDS)

                postgres.start()
                await postgres.wait_ready()
                ready = time.monotonic()
                # Changed while the service's change feed is still away: no stale 304 may hide it.
                changer = await asyncpg.connect(postgres.url)
                try:
                    await changer.execute(
                        "UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1",
                        seeded.observer_print,
                    )
                finally:
                    await changer.close()
                probes = await probe_until_recovered(base, seeded, observer_etag)
                recovered = probes[-1].ended
                await asyncio.sleep(AFTER_SECONDS)
            finally:
                done.set()
                await asyncio.wait_for(asyncio.gather(*clients), ACQUIRE_TIMEOUT + 10)

            alive = server.poll() is None
            log = output(server)
            assert stop(server) == 0, log

        states = await stored_states(postgres.url)
    finally:
        postgres.remove()

    assert alive, log
    assert "Traceback" not in log, log
    assert " status=500 " not in log, log

    # The service healed by itself, and the change made meanwhile shows at once.
    assert [p.status for p in probes[:-1]] == [503] * (len(probes) - 1), probes
    assert probes[-1].status == 200, probes
    [observed] = json.loads(probes[-1].body)
    assert observed["alert_overwrite"] == "FAILED"
    recovery = recovered - ready
    assert recovery < RECOVERY_LIMIT

    # Up, every answer is a success; stopping and down, a success or the contract's 503.
    before = [a for a in answers if a.ended < stopping]
    during = [a for a in answers if a.ended >= stopping and a.started < recovered]
    after = [a for a in answers if a.started >= recovered]
    assert {a.status for a in before} <= {200, 304}, before
    assert {a.status for a in after} <= {200, 304}, after
    assert {a.status for a in during} <= {200, 304, 503}, during
    unavailable = [a for a in during if a.status == 503]
    assert {a.body for a in unavailable} == {json.dumps(UNREACHABLE, separators=(",", ":"))}
    assert {a.retry_after for a in unavailable} == {"5"}
    slowest = max(a.ended - a.started for a in answers)
    assert slowest <= ACQUIRE_TIMEOUT + ANSWER_MARGIN
    print(
        f"recovery {recovery:.2f} s after PostgreSQL took connections; slowest answer"
        f" {slowest:.2f} s; {len(answers)} answers, {len(unavailable)} of them 503"
    )

    # Every read shows a print as seeded or as its one PATCH left it, never a mix.
    for read in (a for a in answers if a.kind == "detail" and a.status == 200):
        state = state_of(json.loads(read.body))
        assert state in (UNTOUCHED, written_by_patch(seeded, read.print_id)), read

    # Every PATCH answered 200 is stored whole; one answered 503 is stored whole or not at all.
    patches = [a for a in answers if a.kind == "patch"]
    for patch in patches:
        expected = patch_values(patch.client, patch.number)
        stored = states[patch.print_id]
        if patch.status == 200:
            assert state_of(json.loads(patch.body)) == expected
            assert stored == expected, patch
        else:
            assert stored in (UNTOUCHED, expected), patch
    patched = {patch.print_id for patch in patches}
    assert all(states[p] == UNTOUCHED for p in seeded.frames if p not in patched)
    assert [p for p in before if p.kind == "patch" and p.status == 200]
    assert [p for p in after if p.kind == "patch" and p.status == 200]


@contextlib.contextmanager
def frozen(postgres: OwnPostgres):
    """Stops every process of the server (SIGSTOP) for the block: it keeps its sockets open and
    answers nothing, as a server that hangs or is cut off without a reset."""
    pids = [
        postgres.process.pid,
        *(c.pid for c in psutil.Process(postgres.process.pid).children()),
    ]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def test_database_that_stops_answering_gets_503_once_the_client_gives_up(
    aiohttp_client, tmp_path
):
    postgres = OwnPostgres()
    try:
        postgres.start()
        await postgres.wait_ready()
        seeded = await seed(postgres.url)
        settings = Settings(
            database_url=postgres.url,
            var_dir=tmp_path,
            secret_key=TEST_SECRET_KEY,
            pool_max_size=2,
            acquire_timeout=ACQUIRE_TIMEOUT,
            statement_timeout=0.5,
        )
        client = await aiohttp_client(create_app(settings))
        headers = {"Authorization": f"Bearer {seeded.load_token}"}
        # The token is checked on a first print; the second's answer is not kept, so the
        # GET under test must reach the database.
        first_id, print_id = sorted(seeded.frames)[:2]
        before = await client.get(f"/api/v1/prints/{first_id}/", headers=headers)
        assert before.status == 200, await before.text()

        give_up = settings.statement_timeout + COMMAND_TIMEOUT_MARGIN
        with frozen(postgres):
            started = time.monotonic()
            hung = await asyncio.wait_for(
                client.get(f"/api/v1/prints/{print_id}/", headers=headers),
                give_up + ANSWER_MARGIN + 1,
            )
            seconds = time.monotonic() - started
            hung_answer = await hung.json()
        after = await client.get(f"/api/v1/prints/{print_id}/", headers=headers)
        after_answer = await after.json()
        await client.close()  # Before the database goes: its pool would retry and log.
    finally:
        postgres.remove()

    assert (hung.status, hung_answer) == (503, {"detail": errors.TOO_SLOW})
    assert give_up <= seconds < give_up + ANSWER_MARGIN
    assert after.status == 200, after_answer
    assert after_answer["id"] == print_id


async def test_change_feed_that_stops_hearing_is_given_up_so_no_stale_304_lasts(
    aiohttp_client, tmp_path
):
    postgres = OwnPostgres()
    try:
        postgres.start()
        await postgres.wait_ready()
        seeded = await seed(postgres.url)
        settings = Settings(
            database_url=postgres.url, var_dir=tmp_path, secret_key=TEST_SECRET_KEY
        )
        client = await aiohttp_client(create_app(settings))
        headers = {"Authorization": f"Bearer {seeded.observer_token}"}
        first = await client.get(LIST, headers=headers)
        etag = first.headers["ETag"]
        remembered = await client.get(LIST, headers={**headers, "If-None-Match": etag})
        assert (first.status, remembered.status) == (200, 304)

        admin = await asyncpg.connect(postgres.url)
        try:
            listener = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTENER_NAME
            )
            # The listener's server process hangs: its socket stays open, nothing comes.
            os.kill(listener, signal.SIGSTOP)
            try:
                await admin.execute(
                    "UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1",
                    seeded.observer_print,
                )
                changed = time.monotonic()
                deadline = changed + RECONNECT_DELAY + PROBE_TIMEOUT + ANSWER_MARGIN
                polls = []
                while time.monotonic() < deadline:
                    poll = await client.get(LIST, headers={**headers, "If-None-Match": etag})
                    polls.append((poll.status, await poll.text()))
                    if poll.status != 304:
                        break
                    await asyncio.sleep(0.1)
                stale_for = time.monotonic() - changed
            finally:
                os.kill(listener, signal.SIGCONT)
        finally:
            await admin.close()
        await client.close()  # Before the database goes: its pool would retry and log.
    finally:
        postgres.remove()

    status, body = polls[-1]
    assert status == 200, polls
    assert [item["alert_overwrite"] for item in json.loads(body)] == ["FAILED"]
    assert stale_for < RECONNECT_DELAY + PROBE_TIMEOUT + ANSWER_MARGIN
    print(f"stale 304s for {stale_for:.2f} s after the listener stopped answering")
