"""The database ceiling: a request's worth of the service's own statements, no HTTP at all.

Each scenario below runs, per iteration, the statements of ``sql/`` that the service sends
to the database for one such request on a warm worker, in the same order (see
service/middleware.py, service/handlers.py and service/changes.py). A warm worker knows the
token's owner and the user's data version from memory, kept current by LISTEN, so neither
``authenticate_token`` nor ``get_data_version`` reaches the database then; the cold path
(first request of a token on a worker) is not what a steady load measures. An iteration
takes a connection from the pool, runs the statements, and gives the connection back. The
pool is the service's own (service.db.create_pool: same session settings, same reset, ten
connections), and its statement counter tells how many round trips an iteration made.

One process runs ``--tasks`` concurrent loops for ``--duration`` seconds from ``--start-at``
(a wall-clock time, so that several processes measure the same interval), and prints one
JSON line: iterations counted, their latencies in milliseconds, and the statements one
iteration sends.
The harness starts as many processes as the service has workers and adds them up.

    python -m bench.db_ceiling --url URL --scenario list_page --context JSON ...
"""

import argparse
import asyncio
import json
import time

from service.db import StatementCounter, create_pool
from service.queries import Queries
from service.settings import Settings

#: A loop stops after this many iterations even if its time is not up.
MAX_ITERATIONS = 5_000_000


async def list_page(connection, q, ctx, _n):
    """GET /api/v1/prints/?start=S&limit=12&sorting=date_desc: the page's one statement."""
    await connection.fetch(q.list_prints_date_desc.text, ctx["user_id"], None, ctx["start"], 12)


async def feedback_page(connection, q, ctx, _n):
    """GET /api/v1/prints/?filter=need_print_shot_feedback&sorting=date_desc&start=0&limit=12."""
    await connection.fetch(q.list_prints_need_feedback_date_desc.text, ctx["user_id"], 0, 12)


async def detail(connection, q, ctx, _n):
    """GET /api/v1/prints/{id}/: the ownership middleware loads the print; the GET sends it."""
    await connection.fetchrow(q.get_print.text, ctx["user_id"], ctx["print_id"])


async def patch(connection, q, ctx, n):
    """PATCH /api/v1/prints/{id}/ with alert_overwrite, alternating FAILED and NOT_FAILED.

    The ownership middleware's load, then the handler's transaction: lock, update (whose
    statement trigger moves the user's data version and NOTIFYs), and the print read back.
    """
    user_id, print_id = ctx["user_id"], ctx["print_id"]
    await connection.fetchrow(q.get_print.text, user_id, print_id)
    async with connection.transaction():
        await connection.fetchrow(q.lock_print.text, user_id, print_id)
        verdict = "FAILED" if n % 2 == 0 else "NOT_FAILED"
        await connection.execute(q.update_print_alert_overwrite.text, user_id, print_id, verdict)
        await connection.fetchrow(q.get_print.text, user_id, print_id)


SCENARIOS = {
    "list_page": list_page,
    "feedback_page": feedback_page,
    "detail": detail,
    "patch": patch,
}


async def measure(url, scenario, ctx, tasks, pool_size, start_at, duration) -> dict:
    """Runs the scenario's loops; returns the iterations counted between start_at and the end."""
    work = SCENARIOS[scenario]
    queries = Queries()
    settings = Settings(database_url=url, pool_min_size=pool_size, pool_max_size=pool_size)
    counter = StatementCounter()
    pool = await create_pool(url, settings, counter)
    stop_at = start_at + duration
    latencies: list[float] = []
    errors = 0

    async def loop(task_index: int) -> None:
        nonlocal errors
        for n in range(task_index, MAX_ITERATIONS * tasks, tasks):
            began_wall = time.time()
            if began_wall >= stop_at:
                return
            began = time.perf_counter()
            try:
                async with pool.acquire() as connection:
                    await work(connection, queries, ctx, n)
            except Exception:
                if began_wall >= start_at:
                    errors += 1
                continue
            if began_wall >= start_at:  # Iterations before start_at only warm up.
                latencies.append((time.perf_counter() - began) * 1000)

    try:
        async with pool.acquire() as connection:  # The token must be the user's, as served.
            owner = await connection.fetchval(
                queries.authenticate_token.text, ctx["digest"], "api"
            )
        if owner != ctx["user_id"]:
            raise SystemExit(f"the token belongs to user {owner}, not {ctx['user_id']}")
        async with asyncio.timeout(stop_at - time.time() + 30):
            await asyncio.gather(*(loop(i) for i in range(tasks)))
        # One more iteration alone, on a warm connection, is one request's worth of round
        # trips (a new connection's first statements also introspect types, once).
        await asyncio.sleep(0.1)  # asyncpg calls query loggers soon after each statement.
        counted_from = counter.count
        async with pool.acquire() as connection:
            await work(connection, queries, ctx, 0)
        await asyncio.sleep(0.1)
        statements = counter.count - counted_from
    finally:
        await pool.close()
    return {
        "count": len(latencies),
        "errors": errors,
        "statements": statements,
        "latencies_ms": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--context", required=True, help="JSON: user_id, digest (hex), ...")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    ctx = json.loads(args.context)
    ctx["digest"] = bytes.fromhex(ctx["digest"])
    result = asyncio.run(
        measure(
            args.url,
            args.scenario,
            ctx,
            args.tasks,
            args.pool_size,
            args.start_at,
            args.duration,
        )
    )
    result["latencies_ms"] = [round(value, 3) for value in result["latencies_ms"]]
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
