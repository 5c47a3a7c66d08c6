"""/healthz, /readyz and /metrics: what load balancers, orchestrators and Prometheus ask."""

import asyncio
import subprocess
import sys
import uuid

import aiohttp
import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from service.app import create_app
from tests.conftest import admin
from tests.test_cli import (
    children,
    free_port,
    output,
    printapi,  # noqa: F401 - a fixture
    running,
    stop,
    wait_until_answering,
)

PRINTS = "/api/v1/prints/"


def samples(text: str) -> dict[tuple, float]:
    """The exposition's samples as {(name, (label, value) pairs...): value}."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client) -> dict[tuple, float]:
    response = await client.get("/metrics")
    assert response.status == 200, await response.text()
    return samples(await response.text())


def requests_of(route: str, method: str, status: int) -> tuple:
    return (
        "printapi_http_requests_total",
        ("method", method),
        ("route", route),
        ("status", str(status)),
    )


@pytest.fixture
async def unmigrated_client(aiohttp_client, settings, server_url):
    """The app on a database of its own where no migration was ever applied."""
    name = f"printapi_ready_{uuid.uuid4().hex[:12]}"
    await admin(server_url, f'CREATE DATABASE "{name}"')
    server = URL(server_url)
    url = str(server.with_path(f"/{name}").with_query(server.query))
    app = create_app(attrs.evolve(settings, database_url=url))
    client = await aiohttp_client(app)
    yield client
    await client.close()
    await admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_healthz_answers_ok_without_credentials(client):
    response = await client.get("/healthz")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_healthz_answers_ok_while_the_database_is_out_of_reach(unreachable_client):
    response = await unreachable_client.get("/healthz")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_answers_ready_on_a_migrated_database(client):
    response = await client.get("/readyz")

    assert response.status == 200
    assert await response.json() == {"status": "ready"}


async def test_readyz_answers_503_while_the_database_is_out_of_reach(unreachable_client):
    response = await unreachable_client.get("/readyz")

    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert await response.json() == {
        "detail": "The database cannot be reached right now; try again shortly."
    }


async def test_readyz_answers_503_naming_the_migrations_not_applied(unmigrated_client):
    response = await unmigrated_client.get("/readyz")

    assert response.status == 503
    assert await response.json() == {
        "detail": "Migrations not applied: 0001_initial, 0002_data_versions, 0003_login_attempts,"
        " 0004_new_users_get_a_version, 0005_refresh_data_versions."
    }


async def test_metrics_count_each_answer_by_route_method_and_status(client, owner):
    _, headers = owner
    for _ in range(3):
        assert (await client.get(PRINTS, headers=headers)).status == 200
    assert (await client.get(PRINTS)).status == 401
    assert (await client.get("/nowhere")).status == 404

    found = await scrape(client)

    assert found[requests_of(PRINTS, "GET", 200)] == 3
    assert found[requests_of(PRINTS, "GET", 401)] == 1
    assert found[requests_of("unmatched", "GET", 404)] == 1
    latency = (
        "printapi_http_request_duration_seconds_count",
        ("method", "GET"),
        ("route", PRINTS),
    )
    assert found[latency] == 4


async def test_metrics_count_methods_outside_the_api_as_one(client):
    # aiohttp's parser refuses made-up methods; these WebDAV ones reach the app.
    for method in ("PROPFIND", "MKCOL", "LOCK"):
        assert (await client.request(method, "/healthz")).status == 405

    found = await scrape(client)

    assert found[requests_of("/healthz", "other", 405)] == 3
    assert not [key for key in found if ("method", "PROPFIND") in key]


async def test_metrics_count_database_errors_by_kind(unreachable_client, owner):
    _, headers = owner

    response = await unreachable_client.get(PRINTS, headers=headers)

    assert response.status == 503
    found = await scrape(unreachable_client)
    assert found[("printapi_db_errors_total", ("kind", "unreachable"))] == 1
    assert found[requests_of(PRINTS, "GET", 503)] == 1


async def test_metrics_show_the_pool_open_and_in_use(client):
    found = await scrape(client)

    assert found[("printapi_db_pool_connections_open",)] == 1
    assert found[("printapi_db_pool_connections_in_use",)] == 0


def test_importing_the_command_line_leaves_prometheus_client_unimported():
    # prometheus_client picks its mode for several processes on its first import, which must
    # come after `printapi serve` has named the metrics directory.
    check = "import sys, service.cli; print('prometheus_client' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stdout == "False\n"


async def test_metrics_of_two_workers_add_up_whichever_answers(printapi, factory, owner):  # noqa: F811
    user_id, headers = owner
    await factory.print(user_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, f"{base}/healthz")

        async def fetch(path: str, **options) -> str:
            async with aiohttp.ClientSession() as fresh, fresh.get(base + path, **options) as r:
                assert r.status == 200, await r.text()
                return await r.text()

        # The kernel picks the worker of each connection: send until both have answered.
        [directory] = (printapi.var_dir / "run").glob("metrics-*")
        workers = children(server.pid)
        both = sorted(f"counter_{pid}.db" for pid in workers)
        sent = 0
        while sent == 0 or sorted(path.name for path in directory.glob("counter_*.db")) != both:
            assert sent < 200, "one worker answered every request"
            await asyncio.gather(*(fetch(PRINTS, headers=headers) for _ in range(10)))
            sent += 10
        scrapes = [samples(await fetch("/metrics")) for _ in range(4)]

        assert [found[requests_of(PRINTS, "GET", 200)] for found in scrapes] == [sent] * 4
        assert stop(server) == 0, output(server)

    assert list((printapi.var_dir / "run").glob("metrics-*")) == []


async def test_a_dropped_database_answers_503_not_500(aiohttp_client, settings, server_url, owner):
    _, headers = owner
    name = f"printapi_dropped_{uuid.uuid4().hex[:12]}"
    await admin(server_url, f'CREATE DATABASE "{name}"')
    url = str(URL(server_url).with_path(f"/{name}").with_query(URL(server_url).query))
    client = await aiohttp_client(create_app(attrs.evolve(settings, database_url=url)))
    await admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')

    answers = [await client.get(path, headers=headers) for path in ("/readyz", PRINTS)]

    assert [answer.status for answer in answers] == [503, 503]
    assert [await answer.json() for answer in answers] == [
        {"detail": "The database cannot be reached right now; try again shortly."}
    ] * 2
    found = await scrape(client)
    assert found[("printapi_db_errors_total", ("kind", "unreachable"))] == 2
