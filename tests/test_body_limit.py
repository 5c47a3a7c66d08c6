"""A request body over the limit answers 413 in the contract's shape and changes nothing,
whether it announces its length or comes chunked, before the server has read it all."""

import asyncio
import contextlib

import attrs
import pytest

from service.app import create_app
from tests.raw import chunk, exchange

LIMIT = 64 * 1024
TOO_LARGE = {"detail": f"The request body is larger than {LIMIT} bytes."}
LOGIN = "/api/v1/auth/login/"


def _head(method: str, path: str, *headers: str) -> str:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers])


def _padded(document: bytes, size: int) -> bytes:
    """The JSON document followed by spaces up to ``size`` bytes: still valid JSON."""
    return document + b" " * (size - len(document))


async def test_default_limit_is_64_kib(settings):
    assert settings.max_body_bytes == LIMIT


async def test_patch_announcing_a_length_over_the_limit_answers_413_before_any_byte(
    client, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    head = _head(
        "PATCH",
        f"/api/v1/prints/{print_id}/",
        f"Authorization: {headers['Authorization']}",
        "Content-Type: application/json",
        f"Content-Length: {LIMIT + 1}",
    )

    response = await exchange(client.port, head)

    assert response.status == 413, response.body
    assert response.json() == TOO_LARGE
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id) is None


async def test_patch_chunked_past_the_limit_answers_413_before_the_body_ends(
    client, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    head = _head(
        "PATCH",
        f"/api/v1/prints/{print_id}/",
        f"Authorization: {headers['Authorization']}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )
    start = chunk(b'{"alert_overwrite": "FAILED"' + b" " * 1000)
    padding = [chunk(b" " * 4096) for _ in range(LIMIT // 4096 + 1)]

    # The closing chunk is never sent: the answer must come without it.
    response = await exchange(client.port, head, start, *padding)

    assert response.status == 413, response.body
    assert response.json() == TOO_LARGE
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id) is None


async def test_patch_of_exactly_the_limit_is_applied(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    body = _padded(b'{"alert_overwrite": "FAILED"}', LIMIT)

    response = await client.patch(
        f"/api/v1/prints/{print_id}/",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["alert_overwrite"] == "FAILED"


async def test_login_announcing_a_length_over_the_limit_answers_413_before_any_byte(
    client, db, owner
):
    head = _head("POST", LOGIN, "Content-Type: application/json", f"Content-Length: {LIMIT + 1}")

    response = await exchange(client.port, head)

    assert response.status == 413, response.body
    assert response.json() == TOO_LARGE
    assert "set-cookie" not in response.headers
    assert await db.fetchval("SELECT count(*) FROM login_attempts") == 0
    assert await db.fetchval("SELECT count(*) FROM api_tokens WHERE kind = 'session'") == 0


async def test_login_chunked_past_the_limit_answers_413_before_the_body_ends(client, db, owner):
    head = _head("POST", LOGIN, "Content-Type: application/json", "Transfer-Encoding: chunked")
    start = chunk(b'{"email": "owner@example.com", "password": "correct horse"}')
    padding = [chunk(b" " * 4096) for _ in range(LIMIT // 4096 + 1)]

    response = await exchange(client.port, head, start, *padding)

    assert response.status == 413, response.body
    assert response.json() == TOO_LARGE
    assert "set-cookie" not in response.headers
    assert await db.fetchval("SELECT count(*) FROM login_attempts") == 0
    assert await db.fetchval("SELECT count(*) FROM api_tokens WHERE kind = 'session'") == 0


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 200), (LIMIT + 1, 413)])
async def test_login_body_is_read_up_to_the_limit_and_not_past_it(client, owner, size, status):
    body = _padded(b'{"email": "owner@example.com", "password": "correct horse"}', size)

    response = await client.post(LOGIN, data=body, headers={"Content-Type": "application/json"})

    assert response.status == status, await response.text()


async def test_limit_comes_from_the_settings(aiohttp_client, settings, db, owner):
    small = await aiohttp_client(create_app(attrs.evolve(settings, max_body_bytes=2048)))
    body = _padded(b'{"email": "owner@example.com", "password": "correct horse"}', 2049)

    response = await small.post(LOGIN, data=body, headers={"Content-Type": "application/json"})

    assert response.status == 413, await response.text()
    assert await response.json() == {"detail": "The request body is larger than 2048 bytes."}


@contextlib.asynccontextmanager
async def stalled_patches(port: int, path: str, authorization: str, count: int):
    """``count`` PATCHes that announce 40 bytes of body, send 10, and send no more."""
    head = _head(
        "PATCH",
        path,
        f"Authorization: {authorization}",
        "Content-Type: application/json",
        "Content-Length: 40",
    )
    writers = []
    try:
        for _ in range(count):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head.encode("latin-1") + b"\r\n\r\n" + b'{"alert_o')
            await writer.drain()
            writers.append(writer)
        await asyncio.sleep(0.3)  # Let the server take each as far as it goes.
        yield
    finally:
        for writer in writers:
            writer.close()


async def test_patches_whose_bodies_stall_hold_no_connection(
    aiohttp_client, settings, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    small = attrs.evolve(
        settings, pool_max_size=2, long_request_connections=1, acquire_timeout=1.0
    )
    client = await aiohttp_client(create_app(small))
    path = f"/api/v1/prints/{print_id}/"

    async with stalled_patches(client.port, path, headers["Authorization"], 4):
        response = await client.patch(path, json={"alert_overwrite": "FAILED"}, headers=headers)

    assert response.status == 200, await response.text()
    assert (await response.json())["alert_overwrite"] == "FAILED"


async def test_body_that_does_not_arrive_in_time_answers_408_and_changes_nothing(
    aiohttp_client, settings, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    client = await aiohttp_client(create_app(attrs.evolve(settings, body_timeout=0.5)))
    head = _head(
        "PATCH",
        f"/api/v1/prints/{print_id}/",
        f"Authorization: {headers['Authorization']}",
        "Content-Type: application/json",
        "Content-Length: 40",
    )

    response = await exchange(client.port, head, b'{"alert_overwrite": "FAI')

    assert response.status == 408, response.body
    assert response.json() == {"detail": "The request body did not arrive within 0.5 seconds."}
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id) is None
