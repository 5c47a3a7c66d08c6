"""The access log: one line per request naming method, path, status, time, user, id, route."""

import asyncio
import logging
import os
import re
import select

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.logs import AccessLogger, BatchingStreamHandler
from service.middleware import request_ids
from tests.test_cli import (
    free_port,
    output,
    printapi,  # noqa: F401 - a fixture
    running,
    stop,
    wait_until_answering,
)

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


async def test_no_secret_reaches_the_log_even_at_debug(printapi, factory, owner):  # noqa: F811
    user_id, headers = owner
    print_id = await factory.print(user_id)
    token = headers["Authorization"].removeprefix("Bearer ")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    printapi.extra_env["PRINTAPI_LOG_LEVEL"] = "DEBUG"
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")

    with running(printapi.start(*command)) as server:
        # unsafe: keep cookies of an IP address, as 127.0.0.1 is.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            await wait_until_answering(server, session, f"{base}/healthz")
            login = {"email": "owner@example.com", "password": "correct horse"}
            async with session.post(f"{base}/api/v1/auth/login/", json=login) as response:
                assert response.status == 200, await response.text()
            cookie = next(iter(session.cookie_jar)).value
            async with session.get(f"{base}/api/v1/prints/") as response:
                assert response.status == 200, await response.text()
            wrong = {"email": "owner@example.com", "password": "wrong battery"}
            async with session.post(f"{base}/api/v1/auth/login/", json=wrong) as response:
                assert response.status == 401, await response.text()
        async with aiohttp.ClientSession() as session:
            change = {"alert_overwrite": "FAILED"}
            url = f"{base}/api/v1/prints/{print_id}/"
            async with session.patch(url, json=change, headers=headers) as response:
                assert response.status == 200, await response.text()
            bad = {"Authorization": "Bearer 0123456789abcdef0123456789abcdef01234567"}
            async with session.get(f"{base}/api/v1/prints/", headers=bad) as response:
                assert response.status == 401, await response.text()
        assert stop(server) == 0
        log = output(server)

    assert " DEBUG " in log  # The level took effect: the check below is not vacuous.
    for secret in (token, "correct horse", "wrong battery", cookie, bad["Authorization"][7:]):
        assert secret not in log, secret


async def test_a_line_break_in_the_path_stays_encoded_in_its_one_line(logged_client, caplog):
    forged = "2026-12-04 INFO aiohttp.access: method=PATCH status=200 user=2"

    response = await logged_client.get(f"/nothing%0a{forged.replace(' ', '%20')}")

    assert response.status == 404
    [line] = await _lines(caplog)
    assert "\n" not in line
    assert line.startswith("method=GET path=/nothing%0A2026-12-04%20INFO%20aiohttp.access:")


async def test_request_id_with_spaces_is_replaced_so_it_cannot_add_fields(logged_client, caplog):
    response = await logged_client.get(
        "/api/v1/prints/", headers={"X-Request-ID": "x status=200 user=7"}
    )

    assert response.status == 401
    made = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made), made
    [line] = await _lines(caplog)
    assert f" request={made} " in line
    assert line.count("status=") == 1 and line.count("user=") == 1


async def test_request_refused_by_the_parser_is_logged_without_an_error(printapi):  # noqa: F811
    port = free_port()
    command = ("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")

    with running(printapi.start(*command)) as server:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(server, session, f"http://127.0.0.1:{port}/healthz")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        headers = "".join(f"X-Filler-{n}: {n}\r\n" for n in range(70))
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        await asyncio.sleep(0.2)  # The access line is written once the answer has gone out.
        assert stop(server) == 0
        log = output(server)

    assert status_line == b"HTTP/1.0 400 Bad Request\r\n"
    assert "Unhandled exception" not in log
    [line] = [line for line in log.splitlines() if " status=400 " in line]
    assert " route=- client=127.0.0.1" in line


# The handler that writes a loop iteration's lines together.


class CountingStream:
    """A text stream that keeps what each write call got."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def _batching_logger(name: str) -> tuple[logging.Logger, CountingStream]:
    stream = CountingStream()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log, stream


async def test_lines_of_one_loop_iteration_go_out_in_one_write():
    log, stream = _batching_logger("test.batching.one_iteration")
    for number in range(3):
        log.info("line %d", number)
    written_before_the_iteration_ends = list(stream.writes)

    await asyncio.sleep(0)

    assert (written_before_the_iteration_ends, stream.writes) == ([], ["line 0\nline 1\nline 2\n"])


async def test_each_write_holds_whole_lines_and_at_most_pipe_buf_bytes():
    log, stream = _batching_logger("test.batching.pipe_buf")
    lines = [f"{number:04d} " + "x" * 195 for number in range(100)]  # 200 bytes each
    for line in lines:
        log.info(line)

    await asyncio.sleep(0)

    per_write = select.PIPE_BUF // 201  # 20 where PIPE_BUF is 4096, as on Linux
    assert [len(write) for write in stream.writes[:-1]] == [per_write * 201] * (
        len(stream.writes) - 1
    )
    assert "".join(stream.writes).splitlines() == lines


async def test_a_line_longer_than_pipe_buf_goes_out_alone():
    log, stream = _batching_logger("test.batching.long_line")
    log.info("short")
    log.info("y" * 5000)
    log.info("short again")

    await asyncio.sleep(0)

    assert stream.writes == ["short\n", "y" * 5000 + "\n", "short again\n"]


async def test_lines_of_later_iterations_go_out_in_later_writes():
    log, stream = _batching_logger("test.batching.later_iterations")
    log.info("first")
    await asyncio.sleep(0)
    log.info("second")
    await asyncio.sleep(0)

    assert stream.writes == ["first\n", "second\n"]


def test_line_outside_a_loop_goes_out_at_once():
    log, stream = _batching_logger("test.batching.no_loop")

    log.info("now")

    assert stream.writes == ["now\n"]


async def test_flush_writes_the_lines_that_wait():
    log, stream = _batching_logger("test.batching.flush")
    log.info("waiting")

    log.handlers[0].flush()

    assert stream.writes == ["waiting\n"]


def test_line_from_another_thread_goes_out_after_the_waiting_ones():
    log, stream = _batching_logger("test.batching.thread")

    async def log_then_call_a_thread():
        log.info("in the loop")
        await asyncio.to_thread(log.info, "from a thread")

    asyncio.run(log_then_call_a_thread())

    assert "".join(stream.writes) == "in the loop\nfrom a thread\n"


# Request ids made by the service.


def test_request_ids_made_in_a_row_differ_in_their_counter_only():
    first, second = request_ids.next(), request_ids.next()

    assert (first[:16], int(second[16:], 16) - int(first[16:], 16)) == (second[:16], 1)


def test_request_ids_made_after_a_fork_start_from_new_random_digits():
    parent = request_ids.next()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, request_ids.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)

    assert re.fullmatch(r"[0-9a-f]{32}", child) and child[:16] != parent[:16]
