"""Who the client is, and whether it came over HTTPS, when the service runs behind proxies.

X-Forwarded-For and X-Forwarded-Proto are believed only from the peers that
PRINTAPI_TRUSTED_PROXIES names: anyone else could write them to pass for another address.
The answer is worked out once per request, when first asked, and kept on the request, so
the access log and the login limits see the same client.
"""

import ipaddress

from aiohttp import web

from service.keys import CLIENT, SETTINGS
from service.settings import TrustedProxies

#: How far back along X-Forwarded-For a client is looked for: a real chain is a few hops.
MAX_HOPS = 16


class Client:
    """The client's address ("" for a peer on a unix socket) and the scheme it used."""

    __slots__ = ("address", "scheme")

    def __init__(self, address: str, scheme: str) -> None:
        self.address = address
        self.scheme = scheme


def client(request: web.Request) -> Client:
    """The request's client, from the peer and the headers its trusted proxies wrote."""
    known = request.get(CLIENT)
    if known is None:
        known = request[CLIENT] = _resolve(request, request.app[SETTINGS].trusted_proxies)
    return known


def _resolve(request: web.Request, proxies: TrustedProxies) -> Client:
    address = request.remote or ""
    scheme = request.scheme
    if not proxies.trusts(address):
        return Client(address, scheme)

    proto = request.headers.get("X-Forwarded-Proto", "").rsplit(",", 1)[-1].strip().lower()
    if proto in ("http", "https"):
        scheme = proto

    # Each proxy appends the address it was reached from: read from the right, and stop at
    # the first address no trusted proxy wrote for another.
    hops = ",".join(request.headers.getall("X-Forwarded-For", ())).split(",")
    for hop in reversed(hops[-MAX_HOPS:]):
        try:
            forwarded = str(ipaddress.ip_address(hop.strip()))
        except ValueError:
            break  # Not an address: keep the last one a trusted proxy vouched for.
        address = forwarded
        if not proxies.trusts(address):
            break
    return Client(address, scheme)
