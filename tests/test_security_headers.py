"""Every kind of response carries the security headers, and a Cache-Control that keeps
personal data out of shared caches; HSTS only when the service is reached over HTTPS."""

import attrs
import pytest
from aiohttp import web

from service.app import create_app

PRINTS = "/api/v1/prints/"
LOGIN = "/api/v1/auth/login/"
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
POLLED = "private, no-cache"
NOT_STORED = "no-store"


def assert_secured(response, cache_control: str) -> None:
    assert {name: response.headers.get(name) for name in SECURITY} == SECURITY
    assert response.headers.getall("Cache-Control") == [cache_control]
    assert "Strict-Transport-Security" not in response.headers


class Crash(web.View):
    async def get(self):
        raise RuntimeError("a bug")


async def test_print_200(client, factory, owner):
    print_id = await factory.print(owner[0])

    response = await client.get(f"{PRINTS}{print_id}/", headers=owner[1])

    assert response.status == 200, await response.text()
    assert_secured(response, POLLED)


async def test_print_304(client, factory, owner):
    print_id = await factory.print(owner[0])
    first = await client.get(f"{PRINTS}{print_id}/", headers=owner[1])
    again = {**owner[1], "If-None-Match": first.headers["ETag"]}

    response = await client.get(f"{PRINTS}{print_id}/", headers=again)

    assert response.status == 304, await response.text()
    assert_secured(response, POLLED)


async def test_list_page_200_and_its_304(client, factory, owner):
    await factory.print(owner[0])
    page = f"{PRINTS}?sorting=date_desc&limit=10"
    first = await client.get(page, headers=owner[1])

    again = await client.get(page, headers={**owner[1], "If-None-Match": first.headers["ETag"]})

    assert (first.status, again.status) == (200, 304)
    assert_secured(first, POLLED)
    assert_secured(again, POLLED)


async def test_streamed_list_200(client, factory, owner):
    await factory.print(owner[0])

    response = await client.get(PRINTS, headers=owner[1])

    assert response.status == 200, await response.text()
    assert response.headers.get("Content-Length") is None  # Streamed, not sent whole.
    assert_secured(response, POLLED)


async def test_patch_200(client, factory, owner):
    print_id = await factory.print(owner[0])

    response = await client.patch(
        f"{PRINTS}{print_id}/", json={"alert_overwrite": "FAILED"}, headers=owner[1]
    )

    assert response.status == 200, await response.text()
    assert_secured(response, NOT_STORED)


async def test_login_200_and_logout_204(client, owner):
    login = await client.post(
        LOGIN, json={"email": "owner@example.com", "password": "correct horse"}
    )
    logout = await client.post("/api/v1/auth/logout/")

    assert (login.status, logout.status) == (200, 204)
    assert_secured(login, NOT_STORED)
    assert_secured(logout, NOT_STORED)


async def test_400_from_the_handler(client, owner):
    response = await client.get(f"{PRINTS}?limit=5", headers=owner[1])

    assert response.status == 400, await response.text()
    assert_secured(response, NOT_STORED)


async def test_401_from_the_middleware(client):
    response = await client.get(PRINTS)

    assert response.status == 401, await response.text()
    assert_secured(response, NOT_STORED)


async def test_403_from_the_middleware(client, owner):
    response = await client.post(
        LOGIN,
        json={"email": "owner@example.com", "password": "correct horse"},
        headers={"Origin": "https://evil.example"},
    )

    assert response.status == 403, await response.text()
    assert_secured(response, NOT_STORED)


async def test_404_from_the_router(client):
    response = await client.get("/nowhere")

    assert response.status == 404, await response.text()
    assert_secured(response, NOT_STORED)


async def test_404_from_the_ownership_middleware(client, owner):
    response = await client.get(f"{PRINTS}12345/", headers=owner[1])

    assert response.status == 404, await response.text()
    assert_secured(response, NOT_STORED)


async def test_405_for_a_method_the_path_does_not_take(client, owner):
    response = await client.delete(PRINTS, headers=owner[1])

    assert response.status == 405, await response.text()
    assert_secured(response, NOT_STORED)


async def test_413_from_the_body_limit(client, owner):
    response = await client.post(
        LOGIN, data=b" " * (65 * 1024), headers={"Content-Type": "application/json"}
    )

    assert response.status == 413, await response.text()
    assert_secured(response, NOT_STORED)


async def test_415_from_the_handler(client, owner):
    response = await client.post(LOGIN, data="email=x", headers={"Content-Type": "text/plain"})

    assert response.status == 415, await response.text()
    assert_secured(response, NOT_STORED)


async def test_429_from_login(aiohttp_client, settings, db, owner):
    client = await aiohttp_client(create_app(attrs.evolve(settings, login_failures_per_email=1)))
    await client.post(LOGIN, json={"email": "owner@example.com", "password": "wrong"})

    response = await client.post(LOGIN, json={"email": "owner@example.com", "password": "no"})

    assert response.status == 429, await response.text()
    assert_secured(response, NOT_STORED)


async def test_503_when_the_database_is_out_of_reach(unreachable_client, owner):
    response = await unreachable_client.get(PRINTS, headers=owner[1])

    assert response.status == 503, await response.text()
    assert_secured(response, NOT_STORED)


async def test_500_from_a_bug(aiohttp_client, settings, owner):
    client = await aiohttp_client(create_app(settings, extra_routes=[("/crash", Crash)]))

    response = await client.get("/crash", headers=owner[1])

    assert response.status == 500, await response.text()
    assert_secured(response, NOT_STORED)


@pytest.mark.parametrize(("path", "status"), [(PRINTS, 200), ("/nowhere", 404)])
async def test_hsts_when_reached_over_https(aiohttp_client, settings, owner, path, status):
    client = await aiohttp_client(create_app(attrs.evolve(settings, cookie_secure=True)))

    response = await client.get(path, headers=owner[1])

    assert response.status == status, await response.text()
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
