"""The API's resources: the print list, one print, and the session login and logout."""

import asyncio
import hashlib
import logging

from aiohttp import web
from aiohttp_session import get_session, new_session

from service import errors
from service.answers import Answer
from service.auth import new_token, token_digest, verify_password
from service.keys import (
    API_DOCUMENT,
    DATA,
    ETAG_SECRET,
    FEED,
    KEPT_ANSWER,
    LEASE,
    PASSWORD_CHECKS,
    PRINT,
    PRINT_ID,
    PRINT_VERSION,
    QUERIES,
    REQUEST_ID,
    SETTINGS,
    USER_ID,
)
from service.limits import claim_login_attempt, settle_login_success
from service.middleware import SESSION_TOKEN, check_same_site, print_answer_key
from service.models import Print, dumps
from service.params import (
    Filter,
    Sorting,
    list_params_of,
    parse_json_body,
    parse_print_change,
    unstorable,
)

logger = logging.getLogger(__name__)

#: Prints read by one statement, and written to the client, at a time when streaming a list.
STREAM_BATCH = 500


#: Polled answers are the user's own and change at any time: caches keep them per user
#: and ask again each time, sending the ETag back.
CACHING_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization, Cookie"}


def json_response(value, status: int = 200, headers=None) -> web.Response:
    return web.Response(
        text=dumps(value), status=status, content_type="application/json", headers=headers
    )


def make_etag(secret: bytes, *parts) -> str:
    """A strong ETag for what ``parts`` name; keyed, so that nobody can forge one."""
    text = "|".join(str(part) for part in parts).encode()
    return '"' + hashlib.blake2b(text, key=secret, digest_size=16).hexdigest() + '"'


def etag_matches(request: web.Request, etag: str) -> bool:
    """True when the request's If-None-Match names ``etag`` (or is ``*``)."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/")
        if candidate in (etag, "*"):
            return True
    return False


def answered(etag: str, body: bytes) -> web.Response:
    """A polled answer: its JSON body, its ETag and the headers that keep ETags working."""
    return web.Response(
        body=body,
        content_type="application/json",
        charset="utf-8",
        headers={"ETag": etag, **CACHING_HEADERS},
    )


def keep_print_answer(request: web.Request, version: int, print_: Print) -> Answer:
    """The answer to a GET of ``print_`` as of the user's data version ``version``, kept in
    the worker's answers while that version is the user's current one."""
    text = dumps(print_.to_json())
    answer = Answer(version, make_etag(request.app[ETAG_SECRET], text), text.encode())
    request.app[FEED].remember_answer(request[USER_ID], print_answer_key(print_.id), answer)
    return answer


def not_modified(etag: str) -> web.Response:
    return web.Response(status=304, headers={"ETag": etag, **CACHING_HEADERS})


async def data_version(request: web.Request) -> int:
    """The user's data version: from the worker's memory, else read from the database.

    Read it before the data it labels: a change that lands in between then shows as a newer
    answer under an older version, which the next poll refreshes, never the other way round.
    """
    feed = request.app[FEED]
    user_id = request[USER_ID]
    version = feed.version(user_id)
    if version is not None:
        return version

    epoch = feed.epoch
    version = (await request[DATA].fetchrow("get_data_version"))["version"]
    feed.remember_version(user_id, version, epoch)
    return version


async def read_json(request: web.Request):
    """The request body as JSON; 415 for another content type or a charset other than
    UTF-8, 400 when it is not strict JSON text."""
    if "Content-Type" not in request.headers:
        raise errors.UnsupportedMediaType(None)
    if request.content_type != "application/json":
        raise errors.UnsupportedMediaType(request.content_type)
    # JSON has no charset parameter; one that says UTF-8 is harmless, any other is not JSON.
    charset = request.charset
    if charset is not None and charset.lower() != "utf-8":
        raise errors.UnsupportedMediaType(request.content_type, charset)
    # Read already, within its limits, by service.limits.body_limit_middleware.
    return parse_json_body(await request.read())


class PrintsView(web.View):
    """GET /api/v1/prints/: the user's prints, filtered, sorted and paged as asked."""

    @staticmethod
    def takes_long(request: web.Request) -> bool:
        """A list without a limit may be long: it leases from the long requests' share."""
        try:
            return list_params_of(request.rel_url.raw_query_string).limit is None
        except errors.BadRequest:
            return False  # Refused once authenticated, before it leases anything.

    async def get(self) -> web.StreamResponse:
        params = list_params_of(self.request.rel_url.raw_query_string)
        data = self.request[DATA]
        needs_feedback = params.filter is Filter.NEED_PRINT_SHOT_FEEDBACK
        simple_filter = None if needs_feedback or params.filter is None else params.filter.value

        version = await data_version(self.request)
        feed = self.request.app[FEED]
        user_id = self.request[USER_ID]
        answer = feed.answer(user_id, params, version)
        if answer is None:
            etag = make_etag(self.request.app[ETAG_SECRET], user_id, version, params)
            answer = Answer(version, etag)
            feed.remember_answer(user_id, params, answer)
        if etag_matches(self.request, answer.etag):
            return not_modified(answer.etag)
        if answer.body is not None:
            return answered(answer.etag, answer.body)

        headers = {"ETag": answer.etag, **CACHING_HEADERS}
        if params.sorting is None:
            if needs_feedback:
                return await self._stream(headers, "list_prints_need_feedback")
            return await self._stream(headers, "list_prints", simple_filter)

        suffix = "date_desc" if params.sorting is Sorting.DATE_DESC else "date_asc"
        if needs_feedback:
            rows = await data.fetch(
                f"list_prints_need_feedback_{suffix}", params.start, params.limit
            )
        else:
            rows = await data.fetch(
                f"list_prints_{suffix}", simple_filter, params.start, params.limit
            )
        body = dumps([Print.from_row(row).to_json() for row in rows]).encode()
        answer = Answer(version, answer.etag, body)
        feed.remember_answer(user_id, params, answer)
        return answered(answer.etag, answer.body)

    async def _stream(self, headers: dict, query_name: str, *args) -> web.StreamResponse:
        """Writes the whole list batch by batch, so memory stays bounded however long it is.

        Each batch is the next ids after the last one sent, read in its own statement; the
        connection goes back to the pool while the batch is written, so a client that reads
        slowly holds nothing but its own socket. The first batch is read before the status
        is sent: a database that fails early still gets a proper error response.
        """
        data = self.request[DATA]
        rows = await data.fetch(query_name, *args, 0, STREAM_BATCH)
        response = web.StreamResponse(
            headers={"Content-Type": "application/json; charset=utf-8", **headers}
        )
        await response.prepare(self.request)

        # XXX: an error past this point can only cut the connection, not send a status.
        separator = b"["
        try:
            while True:
                await data.release()
                if rows:
                    chunk = ",".join(dumps(Print.from_row(row).to_json()) for row in rows)
                    await response.write(separator + chunk.encode())
                    separator = b","
                if len(rows) < STREAM_BATCH:
                    break
                rows = await data.fetch(query_name, *args, rows[-1]["id"], STREAM_BATCH)
            await response.write(b"[]" if separator == b"[" else b"]")
            await response.write_eof()
        except ConnectionError:
            logger.info(
                "client left during a streamed list (request %s)", self.request[REQUEST_ID]
            )
        except Exception:
            # The status line is gone: cut the connection so the client sees a truncated
            # body, rather than an error answer spliced into the list.
            logger.exception(
                "streamed list failed after its start (request %s)", self.request[REQUEST_ID]
            )
            data.discard()
            if self.request.transport is not None:
                self.request.transport.close()
        return response


class PrintView(web.View):
    """GET and PATCH /api/v1/prints/{id}/; the ownership middleware has loaded the print, or
    found the GET's answer kept under the user's current data version.

    The detail's ETag is a keyed hash of its body, so it is exact: a change to another print
    of the user leaves it as it was.
    """

    @staticmethod
    def takes_long(request: web.Request) -> bool:
        """A PATCH may wait for the print's row lock: it leases from the long requests' share."""
        return request.method == "PATCH"

    async def get(self) -> web.Response:
        answer = self.request.get(KEPT_ANSWER)
        if answer is None:
            answer = keep_print_answer(
                self.request, self.request[PRINT_VERSION], self.request[PRINT]
            )
        if etag_matches(self.request, answer.etag):
            return not_modified(answer.etag)
        return answered(answer.etag, answer.body)

    async def patch(self) -> web.Response:
        change = parse_print_change(await read_json(self.request))
        data = self.request[DATA]
        print_id = self.request[PRINT_ID]
        feed = self.request.app[FEED]

        epoch = feed.epoch
        async with data.transaction():
            if await data.fetchrow("lock_print", print_id) is None:
                raise errors.NotFound()
            if change.sets_alert_overwrite:
                await data.execute(
                    "update_print_alert_overwrite", print_id, change.alert_overwrite
                )
            if change.answers:
                await self._set_answers(print_id, change.answers)
            row = await data.fetchrow("get_print", print_id)

        # This worker knows its own change at once; the others once the database announces
        # it. The client's next GET here then finds the new version, and this very answer.
        feed.remember_version(self.request[USER_ID], row["data_version"], epoch)
        answer = keep_print_answer(self.request, row["data_version"], Print.from_row(row))
        return web.Response(body=answer.body, content_type="application/json", charset="utf-8")

    async def _set_answers(self, print_id: int, answers: dict) -> None:
        """Sets the frames' answers; 400 (rolling back) when one is not a frame of this print."""
        data = self.request[DATA]
        ids = list(answers)
        matched = await data.fetch(
            "update_print_shot_answers", print_id, ids, list(answers.values())
        )
        missing = sorted(set(ids) - {row["id"] for row in matched})
        if missing:
            raise errors.BadRequest(
                {
                    "printshotfeedback_set": [
                        f"{feedback_id} is not the id of a feedback of this print."
                        for feedback_id in missing
                    ]
                }
            )
        await data.execute("touch_print", print_id)


class OpenAPIView(web.View):
    """GET /api/v1/openapi.json: the API's OpenAPI document, public like the contract it is.

    Served byte for byte as read at start, so a client can compare it with the repository's.
    """

    public = True

    async def get(self) -> web.Response:
        document = self.request.app[API_DOCUMENT]
        if etag_matches(self.request, document.etag):
            return web.Response(status=304, headers={"ETag": document.etag})
        return web.Response(
            body=document.body,
            content_type="application/json",
            charset="utf-8",
            headers={"ETag": document.etag, "Cache-Control": "no-cache"},
        )


class LoginView(web.View):
    """POST /api/v1/auth/login/: checks email and password, and sets the session cookie.

    The connection is given back while the password is checked: argon2 takes a tenth of a
    second of CPU by design, run in a thread, at most PASSWORD_CHECKS at a time per worker.
    The attempt is counted first, and refused (429) without hashing once the email or the
    client's address has failed too often (service/limits.py).
    """

    public = True

    async def post(self) -> web.Response:
        check_same_site(self.request)
        credentials = _credentials(await read_json(self.request))
        queries = self.request.app[QUERIES]
        lease = self.request[LEASE]

        connection = await lease.connection()
        claim = await claim_login_attempt(self.request, connection, credentials["email"])
        user = await connection.fetchrow(queries.find_user_by_email.text, credentials["email"])
        await lease.release()

        password_hash = user["password_hash"] if user else None
        async with self.request.app[PASSWORD_CHECKS]:
            matches = await asyncio.get_running_loop().run_in_executor(
                None, verify_password, password_hash, credentials["password"]
            )
        if not matches:
            raise errors.Unauthorized("Invalid email or password.")

        token = new_token()
        settings = self.request.app[SETTINGS]
        connection = await lease.connection()
        await settle_login_success(self.request, connection, claim)
        await connection.execute(
            queries.create_session.text, user["id"], token_digest(token), settings.session_max_age
        )
        session = await new_session(self.request)
        session[SESSION_TOKEN] = token
        return json_response({"id": user["id"], "email": user["email"]})


def _credentials(body) -> dict[str, str]:
    """The email and password of a login body; 400 naming each one that is missing or wrong."""
    if not isinstance(body, dict):
        raise errors.BadRequest({"non_field_errors": ["The body must be a JSON object."]})
    problems = {}
    for name in ("email", "password"):
        value = body.get(name)
        if not isinstance(value, str) or not value:
            problems[name] = ["This field is required and must be a non-empty string."]
        elif unstorable(value) is not None:
            problems[name] = ["Must not hold NUL or unpaired surrogate characters."]
    if problems:
        raise errors.BadRequest(problems)
    return {"email": body["email"], "password": body["password"]}


class LogoutView(web.View):
    """POST /api/v1/auth/logout/: ends the session on the server and clears the cookie."""

    public = True

    async def post(self) -> web.Response:
        check_same_site(self.request)
        session = await get_session(self.request)
        token = session.get(SESSION_TOKEN)
        if isinstance(token, str):
            queries = self.request.app[QUERIES]
            connection = await self.request[LEASE].connection()
            await connection.execute(queries.revoke_token.text, token_digest(token))
        session.invalidate()
        return web.Response(status=204)
