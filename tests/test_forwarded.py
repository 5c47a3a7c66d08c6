"""X-Forwarded-For and X-Forwarded-Proto, believed only from the trusted proxies: they name
the client in the access log and in the login limits, and tell whether it came over HTTPS."""

import asyncio
import logging

import attrs
import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.logs import AccessLogger
from service.settings import Settings, SettingsError, TrustedProxies


async def served(aiohttp_client, settings, trusted: str):
    app = create_app(attrs.evolve(settings, trusted_proxies=TrustedProxies.parse(trusted)))
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)
    return await aiohttp_client(server)


async def logged_client_address(client, caplog, forwarded_for: str, proto: str = "") -> str:
    """The client= of the access line of one request with these headers."""
    caplog.clear()
    headers = {"X-Forwarded-For": forwarded_for}
    if proto:
        headers["X-Forwarded-Proto"] = proto
    response = await client.get("/api/v1/prints/", headers=headers)
    assert response.status == 401, await response.text()
    await asyncio.sleep(0.05)  # The line is written once the answer has gone out.
    [line] = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    return line.rsplit(" client=", 1)[1]


@pytest.fixture(autouse=True)
def access_log(caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "address"),
    [
        ("", "203.0.113.9", "127.0.0.1"),
        ("10.0.0.0/8", "203.0.113.9", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.0/8", "198.51.100.7, 203.0.113.9", "203.0.113.9"),
        ("127.0.0.1, 203.0.113.0/24", "198.51.100.7, 203.0.113.9", "198.51.100.7"),
        ("127.0.0.1, 203.0.113.0/24", "203.0.113.8, 203.0.113.9", "203.0.113.8"),
        ("127.0.0.1", "203.0.113.9, not-an-address", "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", " 2001:db8::1 ", "2001:db8::1"),
    ],
)
async def test_client_address_is_the_first_one_no_trusted_proxy_wrote(
    aiohttp_client, settings, db, caplog, trusted, forwarded_for, address
):
    client = await served(aiohttp_client, settings, trusted)

    assert await logged_client_address(client, caplog, forwarded_for) == address


async def test_forwarded_address_is_what_failed_logins_are_counted_under(
    aiohttp_client, settings, db, owner
):
    client = await served(aiohttp_client, settings, "127.0.0.1")

    for address in ("198.51.100.7", "198.51.100.7", "203.0.113.9"):
        response = await client.post(
            "/api/v1/auth/login/",
            json={"email": "owner@example.com", "password": "wrong horse"},
            headers={"X-Forwarded-For": address},
        )
        assert response.status == 401, await response.text()

    rows = await db.fetch("SELECT key, attempts FROM login_attempts WHERE kind = 'address'")
    assert {row["key"]: row["attempts"] for row in rows} == {
        "198.51.100.7": 2,
        "203.0.113.9": 1,
    }


@pytest.mark.parametrize(
    ("trusted", "proto", "strict_transport"),
    [
        ("127.0.0.1", "https", "max-age=31536000"),
        ("127.0.0.1", "http", None),
        ("127.0.0.1", "http, https", "max-age=31536000"),
        ("", "https", None),
    ],
)
async def test_https_told_by_a_trusted_proxy_gets_strict_transport_security(
    aiohttp_client, settings, db, trusted, proto, strict_transport
):
    client = await served(aiohttp_client, settings, trusted)

    response = await client.get("/api/v1/prints/", headers={"X-Forwarded-Proto": proto})

    assert response.status == 401, await response.text()
    assert response.headers.get("Strict-Transport-Security") == strict_transport


@pytest.mark.parametrize(
    ("value", "networks", "unix"),
    [
        ("", (), False),
        ("unix", (), True),
        (" unix , 127.0.0.1, 10.0.0.0/8 ", ("127.0.0.1/32", "10.0.0.0/8"), True),
        ("::1,fd00::/8", ("::1/128", "fd00::/8"), False),
    ],
)
def test_trusted_proxies_are_read_from_the_environment(value, networks, unix):
    proxies = Settings.from_environ({"PRINTAPI_TRUSTED_PROXIES": value}).trusted_proxies

    assert tuple(str(network) for network in proxies.networks) == networks
    assert proxies.unix is unix


def test_trusted_proxies_refuse_what_is_not_an_address():
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({"PRINTAPI_TRUSTED_PROXIES": "127.0.0.1, nginx.local"})

    assert str(raised.value) == (
        "PRINTAPI_TRUSTED_PROXIES must list addresses, networks or unix, not 'nginx.local'"
    )
