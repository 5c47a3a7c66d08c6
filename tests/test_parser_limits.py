"""The request line and header limits, as a real ``printapi serve`` applies them.

aiohttp's parser refuses an oversized URL, header or header count before the app sees the
request, with a plain-text 400 (docs/api.md). Each test sets small limits through the
environment, checks the last size accepted and the first refused, and that the server goes
on answering.
"""

import aiohttp
import pytest

from tests.raw import exchange
from tests.test_cli import free_port, output, printapi, running, stop, wait_until_answering

__all__ = ["printapi"]  # The fixture, imported for these tests.

URL_LIMIT = 1024
HEADER_LIMIT = 2048
HEADER_COUNT_LIMIT = 32
UNAUTHORIZED = {"detail": "Authentication credentials were not provided."}


@pytest.fixture
async def server(printapi, monkeypatch, db):
    """A ``printapi serve`` on 127.0.0.1 with small parser limits; its port."""
    monkeypatch.setenv("PRINTAPI_MAX_URL_BYTES", str(URL_LIMIT))
    monkeypatch.setenv("PRINTAPI_MAX_HEADER_BYTES", str(HEADER_LIMIT))
    monkeypatch.setenv("PRINTAPI_MAX_HEADERS", str(HEADER_COUNT_LIMIT))
    port = free_port()
    with running(printapi.start("serve", "--host", "127.0.0.1", "--port", str(port))) as process:
        async with aiohttp.ClientSession() as session:
            await wait_until_answering(process, session, f"http://127.0.0.1:{port}/")
        yield port
        assert stop(process) == 0, output(process)


def _get(target: str, *headers: str) -> str:
    return "\r\n".join([f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers])


def _target(size: int) -> str:
    """A request target of ``size`` bytes on the list's path."""
    path = "/api/v1/prints/?pad="
    return path + "a" * (size - len(path))


async def _still_serves(port: int, owner) -> None:
    _, headers = owner
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/api/v1/prints/", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        assert await response.json() == []


async def test_url_over_the_limit_is_refused_with_400_and_the_server_goes_on(server, owner):
    longest = await exchange(server, _get(_target(URL_LIMIT)))
    refused = await exchange(server, _get(_target(URL_LIMIT + 1)))

    assert longest.status == 401, longest.body
    assert longest.json() == UNAUTHORIZED
    assert refused.status == 400, refused.body
    assert refused.headers["content-type"] == "text/plain; charset=utf-8"
    assert refused.body.startswith(f"Got more than {URL_LIMIT} bytes when reading".encode())
    await _still_serves(server, owner)


async def test_header_over_the_limit_is_refused_with_400_and_the_server_goes_on(server, owner):
    longest = await exchange(server, _get("/api/v1/prints/", f"X-Padding: {'a' * HEADER_LIMIT}"))
    refused = await exchange(
        server, _get("/api/v1/prints/", f"X-Padding: {'a' * (HEADER_LIMIT + 1)}")
    )

    assert longest.status == 401, longest.body
    assert longest.json() == UNAUTHORIZED
    assert refused.status == 400, refused.body
    assert refused.headers["content-type"] == "text/plain; charset=utf-8"
    assert refused.body.startswith(f"Got more than {HEADER_LIMIT} bytes when reading".encode())
    await _still_serves(server, owner)


async def test_one_header_too_many_is_refused_with_400_and_the_server_goes_on(server, owner):
    # Host is one of them.
    most = [f"X-Header-{n}: {n}" for n in range(HEADER_COUNT_LIMIT - 1)]
    longest = await exchange(server, _get("/api/v1/prints/", *most))
    refused = await exchange(server, _get("/api/v1/prints/", *most, "X-Header-Last: 1"))

    assert longest.status == 401, longest.body
    assert longest.json() == UNAUTHORIZED
    assert refused.status == 400, refused.body
    assert refused.headers["content-type"] == "text/plain; charset=utf-8"
    assert refused.body == b"Too many headers received"
    await _still_serves(server, owner)
