"""The access log: one line per request naming method, path, status, time, user, id, route."""

import asyncio
import logging
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.logs import AccessLogger

CRASH = "/api/v1/crash"


class CrashingView(web.View):
    """A route mounted only here: a bug that raises with a message no client should read."""

    async def get(self) -> web.Response:
        raise RuntimeError("secret internals: token table has 3 rows")


@pytest.fixture
async def logged_client(aiohttp_client, settings, db, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    server = TestServer(create_app(settings, extra_routes=[(CRASH, CrashingView)]))
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


async def test_crash_answers_the_contract_500_and_logs_the_traceback_with_the_request_id(
    logged_client, owner, caplog
):
    _, headers = owner

    response = await logged_client.get(CRASH, headers={**headers, "X-Request-ID": "crash-1"})

    assert response.status == 500
    assert response.content_type == "application/json"
    assert await response.text() == '{"detail":"Internal server error."}'
    assert response.headers["X-Request-ID"] == "crash-1"
    [line] = await _lines(caplog)
    assert line.startswith(f"method=GET path={CRASH} status=500 ")
    assert " request=crash-1 " in line
    [crash] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert crash.name == "service.middleware"
    assert crash.getMessage() == f"unexpected error in GET {CRASH} (request crash-1)"
    assert crash.request_id == "crash-1"
    assert repr(crash.exc_info[1]) == "RuntimeError('secret internals: token table has 3 rows')"
