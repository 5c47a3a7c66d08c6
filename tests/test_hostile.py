"""Input and clients that try to break the service get a clear answer, never a 500 or a hang."""

import asyncio
import datetime
import json
import socket

import aiohttp
import attrs
import pytest

from service.app import create_app
from service.models import format_timestamp

PRINTS = "/api/v1/prints/"
NOT_FOUND = {"detail": "Not found."}


async def _many_prints(db, user_id: int, count: int) -> None:
    await db.execute(
        "INSERT INTO prints (user_id, filename, started_at)"
        " SELECT $1, 'a-long-enough-file-name-' || n || '.gcode', now()"
        " FROM generate_series(1, $2) AS n",
        user_id,
        count,
    )


async def test_id_of_five_thousand_digits_answers_404(client, owner):
    _, headers = owner

    response = await client.get(f"{PRINTS}{'9' * 5000}/", headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND


@pytest.mark.parametrize("name", ["start", "limit"])
async def test_number_of_five_thousand_digits_answers_400(client, owner, name):
    _, headers = owner
    query = {"sorting": "date_desc", name: "1" * 5000}

    response = await client.get(PRINTS, params=query, headers=headers)

    assert response.status == 400, await response.text()
    assert list(await response.json()) == [name]


async def test_lone_surrogate_in_patch_answers_400_in_ascii(client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    response = await client.patch(
        f"{PRINTS}{print_id}/",
        data=b'{"alert_overwrite": "\\ud800"}',
        headers={**headers, "Content-Type": "application/json"},
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "alert_overwrite": ['"\ud800" is not a valid choice; use FAILED, NOT_FAILED or null.']
    }


@pytest.mark.parametrize("email", ["owner@example.com\\u0000", "owner\\ud800@example.com"])
async def test_login_with_unstorable_email_answers_400(client, owner, email):
    body = f'{{"email": "{email}", "password": "correct horse"}}'.encode()

    response = await client.post(
        "/api/v1/auth/login/", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "email": ["Must not hold NUL or unpaired surrogate characters."]
    }


async def test_two_authorization_headers_answer_401(client, owner):
    _, headers = owner
    twice = [("Authorization", headers["Authorization"]), ("Authorization", "Bearer nope")]

    response = await client.get(PRINTS, headers=twice)

    assert response.status == 401, await response.text()
    assert await response.json() == {"detail": "Send one Authorization header, not several."}


async def test_request_id_given_by_the_client_comes_back(client, owner):
    _, headers = owner

    response = await client.get(PRINTS, headers={**headers, "X-Request-ID": "abc-123"})

    assert response.status == 200, await response.text()
    assert response.headers["X-Request-ID"] == "abc-123"


async def test_request_id_is_made_when_the_client_sends_none(client):
    response = await client.get(PRINTS)

    assert response.status == 401, await response.text()
    assert len(response.headers["X-Request-ID"]) == 32


def test_timestamps_before_year_1000_keep_four_digit_years():
    value = datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)

    assert format_timestamp(value) == "0001-01-02T00:00:00.000000Z"


async def _stalled_list_request(port: int, token: str) -> socket.socket:
    """A client that asks for the whole list and then reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    request = f"GET {PRINTS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


async def test_client_that_stops_reading_a_long_list_holds_no_connection(
    aiohttp_client, settings, db, factory, owner, stranger
):
    user_id, headers = owner
    await _many_prints(db, user_id, 30_000)
    await factory.print(stranger[0])
    small_pool = attrs.evolve(settings, pool_max_size=1, acquire_timeout=2.0)
    client = await aiohttp_client(create_app(small_pool))
    token = headers["Authorization"].removeprefix("Bearer ")
    stalled = await _stalled_list_request(client.port, token)
    await asyncio.sleep(0.5)

    try:
        response = await client.get(PRINTS, headers=stranger[1])

        assert response.status == 200, await response.text()
        assert len(await response.json()) == 1
    finally:
        stalled.close()


@pytest.mark.parametrize("path", ["/nowhere", "/api/v1/prints//", "/api/v1/prints/1/extra"])
async def test_unknown_path_answers_json_404(client, path):
    response = await client.get(path)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND


async def test_database_out_of_reach_answers_503_in_the_contract_shape(unreachable_client, owner):
    response = await unreachable_client.get(PRINTS, headers=owner[1])

    assert response.status == 503, await response.text()
    assert await response.json() == {
        "detail": "The database cannot be reached right now; try again shortly."
    }
    assert response.headers["Retry-After"] == "5"


async def test_database_failing_mid_stream_cuts_the_list_instead_of_splicing_an_error(
    aiohttp_client, settings, db, owner, caplog
):
    user_id, headers = owner
    await _many_prints(db, user_id, 1000)
    # The second batch of 500 prints carries 400 frames each: far slower than the first.
    await db.execute(
        "INSERT INTO print_shot_feedbacks (print_id, image_url)"
        " SELECT p.id, 'https://example.com/f.jpg' FROM prints AS p, generate_series(1, 400)"
        " WHERE p.id > (SELECT min(id) + 499 FROM prints)"
    )
    impatient = attrs.evolve(settings, statement_timeout=0.1)
    client = await aiohttp_client(create_app(impatient))

    response = await client.get(PRINTS, headers=headers)

    assert response.status == 200, caplog.text
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("streamed list failed after its start") for m in messages)
    assert not any(m.startswith("database unavailable") for m in messages)


@pytest.mark.parametrize(("name", "zeros"), [("start", 4300), ("limit", 5000)])
async def test_number_behind_thousands_of_leading_zeros_reads_as_its_value(
    client, factory, owner, name, zeros
):
    user_id, headers = owner
    for _ in range(3):
        await factory.print(user_id)
    query = {"sorting": "date_asc", name: "0" * zeros + "2"}

    response = await client.get(PRINTS, params=query, headers=headers)

    assert response.status == 200, await response.text()
    assert len(await response.json()) == {"start": 1, "limit": 2}[name]


async def test_verdict_nested_as_deep_as_the_json_parser_allows_answers_400(
    client, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    not_json = {"non_field_errors": ["The body is not valid JSON."]}
    refused = "... is not a valid choice; use FAILED, NOT_FAILED or null."
    too_deep = {"alert_overwrite": ["[" * 37 + refused]}

    # The parser's limit depends on the stack in use: walk up to it, and past it.
    answers = []
    for depth in range(800, 1100, 4):
        body = '{"alert_overwrite": ' + "[" * depth + "]" * depth + "}"
        response = await client.patch(
            f"{PRINTS}{print_id}/",
            data=body.encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status == 400, (depth, await response.text())
        answers.append(await response.json())

    assert answers[0] == too_deep
    assert answers[-1] == not_json
    assert set(map(json.dumps, answers)) == {json.dumps(too_deep), json.dumps(not_json)}
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id) is None


@pytest.mark.parametrize(
    ("body", "name"),
    [
        pytest.param(
            '{"alert_overwrite": "FAILED", "alert_overwrite": null}', "alert_overwrite", id="top"
        ),
        pytest.param(
            '{"printshotfeedback_set": [{"id": 1, "answer": "LOOKS_OK", "answer": null}]}',
            "answer",
            id="nested",
        ),
        pytest.param(
            '{"filename": {"a": 1, "a": 1}, "alert_overwrite": "FAILED"}', "a", id="ignored"
        ),
    ],
)
async def test_patch_with_a_name_given_twice_answers_400_and_changes_nothing(
    client, db, factory, owner, body, name
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    await factory.feedback(print_id)

    response = await client.patch(
        f"{PRINTS}{print_id}/", data=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "non_field_errors": [f'The name "{name}" is given twice in one object.']
    }
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id) is None
    assert await db.fetchval("SELECT count(answer) FROM print_shot_feedbacks") == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_patch_with_a_number_json_has_not_answers_400_and_changes_nothing(
    client, db, factory, owner, constant
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    body = f'{{"paused_at": {constant}, "alert_overwrite": "FAILED"}}'

    response = await client.patch(
        f"{PRINTS}{print_id}/", data=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {"non_field_errors": ["The body is not valid JSON."]}
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id) is None


async def test_login_with_a_name_given_twice_answers_400(client, owner):
    body = b'{"email": "x@example.com", "email": "owner@example.com", "password": "correct horse"}'

    response = await client.post(
        "/api/v1/auth/login/", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "non_field_errors": ['The name "email" is given twice in one object.']
    }


async def test_patch_with_a_number_of_5000_digits_answers_400_as_not_json(
    client, db, factory, owner
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    body = '{"paused_at": 1' + "0" * 4999 + ', "alert_overwrite": "FAILED"}'

    response = await client.patch(
        f"{PRINTS}{print_id}/", data=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status == 400, await response.text()
    assert await response.json() == {"non_field_errors": ["The body is not valid JSON."]}
    assert await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id) is None
