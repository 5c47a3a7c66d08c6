"""The contract's error bodies: ``{"detail": ...}``, or ``{"field": [messages]}`` for a 400."""

import json

from aiohttp import web


def _json_body(body: dict) -> dict:
    # ASCII escapes: a message may quote a client's string holding a lone surrogate, which
    # has no UTF-8 form.
    return {"text": json.dumps(body, separators=(",", ":")), "content_type": "application/json"}


class BadRequest(web.HTTPBadRequest):
    """400 naming each parameter or field at fault with its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(**_json_body(errors))
        self.errors = errors


class Unauthorized(web.HTTPUnauthorized):
    """401 with the challenge that tells a client which credentials to send."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            headers={"WWW-Authenticate": 'Bearer realm="printapi"'},
            **_json_body({"detail": detail}),
        )


class Forbidden(web.HTTPForbidden):
    def __init__(self, detail: str) -> None:
        super().__init__(**_json_body({"detail": detail}))


class NotFound(web.HTTPNotFound):
    """404 with one body for every cause, so that ids of other users' prints cannot be probed."""

    def __init__(self) -> None:
        super().__init__(**_json_body({"detail": "Not found."}))


class UnsupportedMediaType(web.HTTPUnsupportedMediaType):
    """415 for a body that is not JSON, or JSON in a charset other than UTF-8."""

    def __init__(self, content_type: str | None, charset: str | None = None) -> None:
        if content_type is None:
            detail = "The request has no Content-Type: send application/json."
        elif charset is not None:
            detail = f'Unsupported charset "{charset}": send application/json in UTF-8.'
        else:
            detail = f'Unsupported media type "{content_type}": send application/json.'
        super().__init__(**_json_body({"detail": detail}))


class PayloadTooLarge(web.HTTPRequestEntityTooLarge):
    """413 for a body over the limit, whether announced by Content-Length or found reading."""

    def __init__(self, limit: int) -> None:
        detail = f"The request body is larger than {limit} bytes."
        super().__init__(max_size=limit, **_json_body({"detail": detail}))


class RequestTimeout(web.HTTPRequestTimeout):
    """408 for a body that did not arrive in time; the connection is closed after it."""

    def __init__(self, seconds: float) -> None:
        detail = f"The request body did not arrive within {seconds:g} seconds."
        super().__init__(headers={"Connection": "close"}, **_json_body({"detail": detail}))


class TooManyRequests(web.HTTPTooManyRequests):
    """429 with Retry-After: the same body whatever tripped the limit, so it reveals nothing."""

    def __init__(self, retry_after: int) -> None:
        unit = "second" if retry_after == 1 else "seconds"
        detail = f"Too many failed logins; try again in {retry_after} {unit}."
        super().__init__(
            headers={"Retry-After": str(retry_after)}, **_json_body({"detail": detail})
        )


#: The 503 details: the database is out of reach or too slow, a lock is held too long, or
#: the connections that changes and long lists may hold are all taken.
UNREACHABLE = "The database cannot be reached right now; try again shortly."
TOO_SLOW = "The database took too long to answer; try again shortly."
LOCKED = "The data is locked by another change that is taking too long; try again shortly."
LONG_REQUESTS_BUSY = "Too many changes and long lists are running; try again shortly."


class ServiceUnavailable(web.HTTPServiceUnavailable):
    """503: the database cannot serve the request now; the same request may work later.

    Also for a statement cancelled by a timeout: the service is the origin server, not a
    gateway, so 503 with Retry-After (which clients of the contract already retry) rather
    than 504.
    """

    def __init__(self, detail: str = UNREACHABLE) -> None:
        super().__init__(headers={"Retry-After": "5"}, **_json_body({"detail": detail}))


class ServerError(web.HTTPInternalServerError):
    def __init__(self) -> None:
        super().__init__(**_json_body({"detail": "Internal server error."}))
