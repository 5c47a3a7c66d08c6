"""Limits against abuse: the request body's size, and failed logins per email and per address.

The limits on the request line and the headers are aiohttp's parser's (``parser_limits``):
it refuses those requests before the app sees them.
"""

import asyncio
import datetime
import ipaddress

import asyncpg
import attrs
from aiohttp import web

from service import errors
from service.forwarded import client
from service.keys import QUERIES, SETTINGS
from service.settings import Settings

#: IPv6 clients are counted by their /64 network: one host is commonly given a whole /64,
#: so counting single addresses would let it try from as many addresses as it likes.
IPV6_PREFIX = 64

#: The address key of a client with no IP address, such as one on a unix socket.
NO_ADDRESS = "local"


def parser_limits(settings: Settings) -> dict[str, int]:
    """The request handler's arguments that bound what aiohttp's parser accepts.

    ``max_line_size`` bounds the request target (the URL), ``max_field_size`` each header's
    name and value together, ``max_headers`` their number.
    """
    return {
        "max_line_size": settings.max_url_bytes,
        "max_field_size": settings.max_header_bytes,
        "max_headers": settings.max_headers,
    }


@web.middleware
async def body_limit_middleware(request: web.Request, handler):
    """Reads the whole body first, within its size and time limits, before anything else.

    A body that announces a length over the limit answers 413 at once; a chunked one, whose
    length is not announced, when reading passes the limit (the app's ``client_max_size``).
    Reading it here, before the session, the connection and the print are taken, means a
    client that sends its body slowly holds its own socket and nothing else; one that takes
    longer than PRINTAPI_BODY_TIMEOUT answers 408. Handlers then read the body kept here.
    """
    length = request.content_length
    if length is not None and length > request.client_max_size:
        raise errors.PayloadTooLarge(request.client_max_size)

    if request.body_exists:
        timeout = request.app[SETTINGS].body_timeout
        try:
            await asyncio.wait_for(request.read(), timeout)
        except web.HTTPRequestEntityTooLarge:
            raise errors.PayloadTooLarge(request.client_max_size) from None
        except TimeoutError:
            raise errors.RequestTimeout(timeout) from None
    return await handler(request)


def client_address(request: web.Request) -> str:
    """The key the client's address is counted under: an IPv4 address, or an IPv6 /64.

    Behind trusted proxies, the address is the one they forwarded (service/forwarded.py).
    """
    try:
        address = ipaddress.ip_address(client(request).address)
    except ValueError:
        return NO_ADDRESS
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


@attrs.frozen
class LoginClaim:
    """One login attempt, counted before the password is checked."""

    email: str
    address: str
    #: When the address's window ends: a success takes the attempt back from that window.
    address_window_ends: datetime.datetime


async def claim_login_attempt(
    request: web.Request, connection: asyncpg.Connection, email: str
) -> LoginClaim:
    """Counts the attempt for the email and the client's address; 429 if either is over.

    The attempt is counted before the password is checked, so parallel guesses cannot all
    pass before the first failure is written. The 429 is the same for an email that has no
    account: attempts are counted for any email.
    """
    settings = request.app[SETTINGS]
    address = client_address(request)
    rows = await connection.fetch(
        request.app[QUERIES].claim_login_attempt.text, email, address, settings.login_window
    )
    by_kind = {row["kind"]: row for row in rows}

    limits = {
        "email": settings.login_failures_per_email,
        "address": settings.login_failures_per_address,
    }
    waits = [
        by_kind[kind]["seconds_left"]
        for kind, limit in limits.items()
        if limit and by_kind[kind]["attempts"] > limit
    ]
    if waits:
        raise errors.TooManyRequests(max(1, *waits))
    return LoginClaim(email, address, by_kind["address"]["window_ends"])


async def settle_login_success(
    request: web.Request, connection: asyncpg.Connection, claim: LoginClaim
) -> None:
    """Forgets the email's attempts and takes this one back from the address's count.

    The password was right: the email's earlier failures were its owner's typos. The address
    keeps its failures, so that logging in to one's own account between guesses at others'
    does not reset the count.
    """
    await connection.execute(
        request.app[QUERIES].settle_login_success.text,
        claim.email,
        claim.address,
        claim.address_window_ends,
    )
