"""The access log: one line per request naming method, path, status, time, user, id, route."""

import asyncio
import logging
import re

import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.logs import AccessLogger


@pytest.fixture
async def logged_client(aiohttp_client, settings, db, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    server = TestServer(create_app(settings))
    await server.start_server(access_log_class=AccessLogger)
    return await aiohttp_client(server)


async def _lines(caplog) -> list[str]:
    await asyncio.sleep(0.05)  # The line is written once the answer has gone out.
    return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]


async def test_authenticated_request_logs_user_request_id_and_route(
    logged_client, factory, owner, caplog
):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    response = await logged_client.get(
        f"/api/v1/prints/{print_id}/", headers={**headers, "X-Request-ID": "req-1"}
    )

    assert response.status == 200, await response.text()
    [line] = await _lines(caplog)
    assert re.fullmatch(
        rf"method=GET path=/api/v1/prints/{print_id}/ status=200 ms=\d+\.\d"
        rf" user={user_id} request=req-1 route=/api/v1/prints/\{{print_id\}}/ client=127.0.0.1",
        line,
    ), line


async def test_refused_request_logs_no_user(logged_client, caplog):
    response = await logged_client.get("/api/v1/prints/")

    assert response.status == 401, await response.text()
    [line] = await _lines(caplog)
    assert " status=401 " in line
    assert " user=- " in line


async def test_unknown_path_logs_no_route(logged_client, caplog):
    response = await logged_client.get("/nowhere")

    assert response.status == 404, await response.text()
    [line] = await _lines(caplog)
    assert line.startswith("method=GET path=/nowhere status=404 ")
    assert line.endswith(" route=- client=127.0.0.1")
