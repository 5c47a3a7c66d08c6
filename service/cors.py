"""CORS for the pages of PRINTAPI_TRUSTED_ORIGINS, and for no one else.

A dashboard served from another origin (https://app.example.com) calls the API with
fetch(): the browser first asks with an OPTIONS preflight whether a PATCH, or a request
with Authorization, may be sent, and hides every answer that does not name its origin.
Only the trusted origins get a yes, with credentials allowed so the session cookie goes
along; the cross-site check (service/auth.py) trusts the same list.
"""

from aiohttp import web

from service.keys import SETTINGS

#: What a trusted page may send and read.
ALLOWED_METHODS = "GET, PATCH, POST"
ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match, X-Request-ID"
EXPOSED_HEADERS = "ETag, Retry-After, X-Request-ID"
#: Seconds a browser may keep a preflight's answer.
PREFLIGHT_MAX_AGE = "600"


def _trusted_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin is not None and origin in request.app[SETTINGS].trusted_origins:
        return origin
    return None


@web.middleware
async def preflight_middleware(request: web.Request, handler):
    """Answers a trusted origin's preflight at once: it carries no credentials to check."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        origin = _trusted_origin(request)
        if origin is not None:
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                },
            )
    return await handler(request)


async def send_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: lets a trusted page read the answer, errors and streams included."""
    if not request.app[SETTINGS].trusted_origins:
        return
    response.headers.add("Vary", "Origin")  # Caches must not give one origin's answer to another.
    origin = _trusted_origin(request)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
