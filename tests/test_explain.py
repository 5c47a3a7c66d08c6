"""The list queries read a heavy user's history through the indexes made for them.

Each test fills the database with a user's 20,000 prints among four other users' 20,000
each, then asks PostgreSQL for the plan (EXPLAIN ANALYZE, FORMAT JSON) of a statement of
sql/ exactly as the service runs it. docs/explain-list-query.md shows the same plans as
text, made from the same rows.
"""

import json

import pytest

from service.db import PLANNER_SETTINGS
from service.handlers import STREAM_BATCH
from service.queries import Queries

HISTORY = 20_000
OTHER_USERS = 4

#: $2 prints for each user of $1, dealt in turn; one in 50 never started, one in 10 has no
#: finish.
HISTORY_PRINTS = """
INSERT INTO prints (user_id, filename, started_at, finished_at)
SELECT ($1::bigint[])[1 + n % cardinality($1::bigint[])],
       'print-' || n || '.gcode',
       CASE WHEN n % 50 <> 0 THEN timestamptz '2024-01-01 00:00Z' + n * interval '7 minutes' END,
       CASE WHEN n % 10 <> 0 THEN timestamptz '2024-01-01 02:00Z' + n * interval '7 minutes' END
  FROM generate_series(1, $2::int * cardinality($1::bigint[])) AS n
"""
#: One frame on every seventh print, half of them answered.
HISTORY_FRAMES = """
INSERT INTO print_shot_feedbacks (print_id, image_url, answer)
SELECT p.id,
       'https://example.com/f/' || p.id || '.jpg',
       CASE WHEN p.id % 2 = 0 THEN 'LOOKS_OK' END
  FROM prints AS p
 WHERE p.id % 7 = 0
"""
#: How many times PostgreSQL plans a prepared statement for its values before it may
#: switch to the generic plan, as a pooled connection does after its first few lists.


@pytest.fixture
async def heavy_user(db, factory) -> int:
    """The id of a user with HISTORY prints among OTHER_USERS' as many, statistics fresh."""
    user_ids = [await factory.user() for _ in range(OTHER_USERS + 1)]
    await db.execute(HISTORY_PRINTS, user_ids, HISTORY)
    await db.execute(HISTORY_FRAMES)
    await db.execute("ANALYZE prints, print_shot_feedbacks")
    return user_ids[0]


async def explain(db, statement: str, arguments: str, plan_cache_mode: str) -> dict:
    """The executed plan of sql/<statement>.sql prepared and run with ``arguments``.

    ``plan_cache_mode`` is PostgreSQL's: force_custom_plan plans for the values given, as
    on a connection's first runs; force_generic_plan plans once for any values, as later.
    """
    for name, value in PLANNER_SETTINGS.items():
        await db.execute(f"SELECT set_config('{name}', '{value}', false)")
    await db.execute(f"SET plan_cache_mode = {plan_cache_mode}")
    await db.execute(f"PREPARE listed AS {getattr(Queries(), statement).text}")
    text = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE listed({arguments})")
    await db.execute("DEALLOCATE listed")
    return json.loads(text)[0]["Plan"]


def nodes(plan: dict):
    """Every node of a plan, the top one first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def index_scans(plan: dict) -> dict[str, int]:
    """The rows each index of the plan gave, by index name."""
    return {
        node["Index Name"]: node["Actual Rows"] for node in nodes(plan) if "Index Name" in node
    }


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_date_desc_first_page_reads_twelve_entries_of_started_desc_index(
    db, heavy_user, plan_cache_mode
):
    plan = await explain(
        db, "list_prints_date_desc", f"{heavy_user}, NULL, 0, 12", plan_cache_mode
    )

    assert plan["Actual Rows"] == 12
    assert index_scans(plan)["prints_user_started_desc"] == 12


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_date_asc_first_page_reads_twelve_entries_of_started_asc_index(
    db, heavy_user, plan_cache_mode
):
    plan = await explain(db, "list_prints_date_asc", f"{heavy_user}, NULL, 0, 12", plan_cache_mode)

    assert plan["Actual Rows"] == 12
    assert index_scans(plan)["prints_user_started_asc"] == 12


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("after", ["0", "the middle"])
async def test_stream_batch_reads_only_its_own_entries_of_the_user_id_index(
    db, heavy_user, plan_cache_mode, after
):
    middle = await db.fetchval(
        "SELECT id FROM prints WHERE user_id = $1 ORDER BY id OFFSET $2 LIMIT 1",
        heavy_user,
        HISTORY // 2,
    )
    after_id = 0 if after == "0" else middle

    plan = await explain(
        db, "list_prints", f"{heavy_user}, NULL, {after_id}, {STREAM_BATCH}", plan_cache_mode
    )

    assert plan["Actual Rows"] == STREAM_BATCH
    assert index_scans(plan)["prints_user_id_id"] == STREAM_BATCH
    assert sum(node.get("Rows Removed by Filter", 0) for node in nodes(plan)) == 0
