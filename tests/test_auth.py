"""Authentication: API tokens, the session cookie, and the refusal of cross-site changes."""

import json

import attrs
import pytest

from service.app import SESSION_COOKIE, create_app

LOGIN = "/api/v1/auth/login/"
LOGOUT = "/api/v1/auth/logout/"
PRINTS = "/api/v1/prints/"
#: The password the ``owner`` fixture gives its user.
PASSWORD = "correct horse"
CHALLENGE = 'Bearer realm="printapi"'
EVIL = "https://evil.example"


async def log_in(client, email: str = "owner@example.com", password: str = PASSWORD):
    """Logs ``client`` in; its cookie jar then holds the session cookie."""
    response = await client.post(LOGIN, json={"email": email, "password": password})
    assert response.status == 200, await response.text()
    return response


def session_cookie(client) -> str:
    """The value of the session cookie in the client's cookie jar."""
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value


def own_origin(client) -> str:
    return str(client.make_url("/").origin())


@pytest.fixture
async def logged_in(client, factory, owner):
    """The owner, logged in on ``client`` with a session cookie: (user id, a print of theirs)."""
    user_id, _ = owner
    print_id = await factory.print(user_id)
    await log_in(client)
    return user_id, print_id


async def alert_overwrite(db, print_id: int):
    return await db.fetchval("SELECT alert_overwrite FROM prints WHERE id = $1", print_id)


# Tokens


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "Token", "token", "tOkEn"])
async def test_token_in_authorization_header_authenticates_with_either_scheme(
    client, factory, owner, scheme
):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    token = headers["Authorization"].split()[1]

    response = await client.get(PRINTS, headers={"Authorization": f"{scheme} {token}"})

    assert response.status == 200, await response.text()
    assert [item["id"] for item in await response.json()] == [print_id]


async def test_no_credentials_answer_401_with_challenge(client):
    response = await client.get(PRINTS)

    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert await response.json() == {"detail": "Authentication credentials were not provided."}


async def test_unknown_token_answers_401_with_challenge(client, owner):
    response = await client.get(PRINTS, headers={"Authorization": "Bearer " + "0" * 40})

    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert await response.json() == {"detail": "Invalid or revoked token."}


async def test_revoked_token_answers_401_with_challenge(client, db, owner):
    user_id, headers = owner
    await db.execute("UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1", user_id)

    response = await client.get(PRINTS, headers=headers)

    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert await response.json() == {"detail": "Invalid or revoked token."}


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer a b", "Token ", "abc"])
async def test_malformed_authorization_header_answers_401_with_challenge(client, owner, header):
    response = await client.get(PRINTS, headers={"Authorization": header})

    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert await response.json() == {"detail": "Invalid Authorization header: use Bearer <token>."}


async def test_malformed_authorization_header_is_refused_even_with_a_session(client, logged_in):
    response = await client.get(PRINTS, headers={"Authorization": "Basic abc"})

    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == CHALLENGE


# Session login and logout


async def test_login_answers_user_and_sets_httponly_samesite_cookie(client, owner):
    user_id, _ = owner

    response = await client.post(LOGIN, json={"email": "owner@example.com", "password": PASSWORD})

    assert response.status == 200, await response.text()
    assert await response.json() == {"id": user_id, "email": "owner@example.com"}
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"


async def test_login_matches_email_without_regard_to_case(client, owner):
    user_id, _ = owner

    response = await client.post(LOGIN, json={"email": "OWNER@Example.COM", "password": PASSWORD})

    assert response.status == 200, await response.text()
    assert await response.json() == {"id": user_id, "email": "owner@example.com"}


async def test_session_cookie_authenticates_list(client, factory, owner):
    user_id, _ = owner
    print_id = await factory.print(user_id)
    await log_in(client)

    response = await client.get(PRINTS)

    assert response.status == 200, await response.text()
    assert [item["id"] for item in await response.json()] == [print_id]


async def test_session_cookie_sent_as_explicit_header_authenticates(client, logged_in):
    _, print_id = logged_in
    cookie = session_cookie(client)
    client.session.cookie_jar.clear()

    response = await client.get(PRINTS, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})

    assert response.status == 200, await response.text()
    assert [item["id"] for item in await response.json()] == [print_id]


async def test_wrong_password_and_unknown_email_answer_identical_401(client, owner):
    wrong_password = await client.post(
        LOGIN, json={"email": "owner@example.com", "password": "wrong password"}
    )
    unknown_email = await client.post(
        LOGIN, json={"email": "nobody@example.com", "password": PASSWORD}
    )

    assert wrong_password.status == 401, await wrong_password.text()
    assert unknown_email.status == 401, await unknown_email.text()
    assert await wrong_password.json() == {"detail": "Invalid email or password."}
    assert await unknown_email.json() == await wrong_password.json()
    assert wrong_password.headers["WWW-Authenticate"] == CHALLENGE
    assert unknown_email.headers["WWW-Authenticate"] == CHALLENGE
    assert SESSION_COOKIE not in wrong_password.cookies
    assert SESSION_COOKIE not in unknown_email.cookies


async def test_failed_login_does_not_authenticate_later_requests(client, owner):
    await client.post(LOGIN, json={"email": "owner@example.com", "password": "wrong password"})

    response = await client.get(PRINTS)

    assert response.status == 401, await response.text()


async def test_user_without_password_cannot_log_in(client, factory):
    await factory.user("nopassword@example.com")

    response = await client.post(
        LOGIN, json={"email": "nopassword@example.com", "password": "any password"}
    )

    assert response.status == 401, await response.text()
    assert await response.json() == {"detail": "Invalid email or password."}
    assert SESSION_COOKIE not in response.cookies


async def test_login_without_fields_answers_400_naming_each(client, owner):
    response = await client.post(LOGIN, json={})

    assert response.status == 400, await response.text()
    message = ["This field is required and must be a non-empty string."]
    assert await response.json() == {"email": message, "password": message}


async def test_login_with_empty_password_answers_400_naming_it(client, owner):
    response = await client.post(LOGIN, json={"email": "owner@example.com", "password": ""})

    assert response.status == 400, await response.text()
    assert list(await response.json()) == ["password"]


async def test_login_with_form_body_answers_415(client, owner):
    response = await client.post(LOGIN, data={"email": "owner@example.com", "password": PASSWORD})

    assert response.status == 415, await response.text()
    assert await response.json() == {
        "detail": 'Unsupported media type "application/x-www-form-urlencoded": '
        "send application/json."
    }
    assert SESSION_COOKIE not in response.cookies


async def test_login_with_utf16_body_answers_400_and_sets_no_cookie(client, owner):
    body = json.dumps({"email": "owner@example.com", "password": PASSWORD}).encode("utf-16")

    response = await client.post(LOGIN, data=body, headers={"Content-Type": "application/json"})

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "non_field_errors": ["The body must be UTF-8, with no byte order mark."]
    }
    assert SESSION_COOKIE not in response.cookies


async def test_login_with_charset_latin1_answers_415_and_sets_no_cookie(client, owner):
    body = json.dumps({"email": "owner@example.com", "password": PASSWORD}).encode()

    response = await client.post(
        LOGIN, data=body, headers={"Content-Type": "application/json; charset=iso-8859-1"}
    )

    assert response.status == 415, await response.text()
    assert await response.json() == {
        "detail": 'Unsupported charset "iso-8859-1": send application/json in UTF-8.'
    }
    assert SESSION_COOKIE not in response.cookies


async def test_logout_answers_204_and_cookie_no_longer_authenticates(client, logged_in):
    response = await client.post(LOGOUT)

    assert response.status == 204, await response.text()

    after = await client.get(PRINTS)

    assert after.status == 401, await after.text()
    assert after.headers["WWW-Authenticate"] == CHALLENGE


async def test_logout_with_a_token_leaves_the_token_working(client, db, owner):
    _, headers = owner

    response = await client.post(LOGOUT, headers=headers)

    assert response.status == 204, await response.text()
    assert await db.fetchval("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL") == 1
    after = await client.get(PRINTS, headers=headers)
    assert after.status == 200, await after.text()


async def test_copy_of_cookie_replayed_after_logout_answers_401(client, logged_in):
    cookie = session_cookie(client)
    await client.post(LOGOUT)
    client.session.cookie_jar.clear()

    response = await client.get(PRINTS, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})

    assert response.status == 401, await response.text()


async def test_expired_session_answers_401(client, db, logged_in):
    await db.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")

    response = await client.get(PRINTS)

    assert response.status == 401, await response.text()
    assert await response.json() == {"detail": "The session has ended; log in again."}


async def test_login_stores_a_session_token_that_expires_after_max_age(client, db, owner):
    user_id, _ = owner

    response = await client.post(LOGIN, json={"email": "owner@example.com", "password": PASSWORD})

    assert response.status == 200, await response.text()
    row = await db.fetchrow(
        "SELECT expires_at - created_at AS lifetime FROM api_tokens"
        " WHERE user_id = $1 AND kind = 'session'",
        user_id,
    )
    assert row["lifetime"].total_seconds() == 14 * 24 * 3600


async def test_session_of_deleted_user_answers_401(client, db, logged_in):
    user_id, _ = logged_in
    await db.execute("DELETE FROM users WHERE id = $1", user_id)

    response = await client.get(PRINTS)

    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == CHALLENGE


async def test_tampered_session_cookie_answers_401(client, logged_in):
    cookie = session_cookie(client)
    middle = len(cookie) // 2
    tampered = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
    client.session.cookie_jar.clear()

    response = await client.get(PRINTS, headers={"Cookie": f"{SESSION_COOKIE}={tampered}"})

    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert await response.json() == {"detail": "Authentication credentials were not provided."}


async def test_cookie_made_with_another_key_answers_401(
    aiohttp_client, client, settings, logged_in
):
    other = await aiohttp_client(
        create_app(attrs.evolve(settings, secret_key=b"another key, 32 bytes long......"))
    )
    cookie = session_cookie(client)

    response = await other.get(PRINTS, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})

    assert response.status == 401, await response.text()


# Cross-site requests with the session cookie


async def test_session_patch_from_foreign_origin_answers_403_and_changes_nothing(
    client, db, logged_in
):
    _, print_id = logged_in

    response = await client.patch(
        f"{PRINTS}{print_id}/", json={"alert_overwrite": "FAILED"}, headers={"Origin": EVIL}
    )

    assert response.status == 403, await response.text()
    assert await response.json() == {
        "detail": f"Cross-site request refused: origin {EVIL} is not this service's."
    }
    assert await alert_overwrite(db, print_id) is None


async def test_session_patch_with_foreign_referer_answers_403(client, db, logged_in):
    _, print_id = logged_in

    response = await client.patch(
        f"{PRINTS}{print_id}/",
        json={"alert_overwrite": "FAILED"},
        headers={"Referer": f"{EVIL}/page"},
    )

    assert response.status == 403, await response.text()
    assert await alert_overwrite(db, print_id) is None


async def test_session_patch_marked_cross_site_without_origin_answers_403(client, db, logged_in):
    _, print_id = logged_in

    response = await client.patch(
        f"{PRINTS}{print_id}/",
        json={"alert_overwrite": "FAILED"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )

    assert response.status == 403, await response.text()
    assert await response.json() == {
        "detail": "Cross-site request refused: Sec-Fetch-Site is cross-site."
    }
    assert await alert_overwrite(db, print_id) is None


async def test_session_patch_from_own_origin_is_applied(client, db, logged_in):
    _, print_id = logged_in

    response = await client.patch(
        f"{PRINTS}{print_id}/",
        json={"alert_overwrite": "FAILED"},
        headers={"Origin": own_origin(client), "Sec-Fetch-Site": "same-origin"},
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["alert_overwrite"] == "FAILED"
    assert await alert_overwrite(db, print_id) == "FAILED"


async def test_session_patch_without_origin_is_applied(client, db, logged_in):
    _, print_id = logged_in

    response = await client.patch(f"{PRINTS}{print_id}/", json={"alert_overwrite": "NOT_FAILED"})

    assert response.status == 200, await response.text()
    assert await alert_overwrite(db, print_id) == "NOT_FAILED"


async def test_session_patch_from_trusted_origin_is_applied(
    aiohttp_client, settings, db, factory, owner
):
    user_id, _ = owner
    print_id = await factory.print(user_id)
    trusted = attrs.evolve(settings, trusted_origins=("https://app.example",))
    client = await aiohttp_client(create_app(trusted))
    await log_in(client)

    response = await client.patch(
        f"{PRINTS}{print_id}/",
        json={"alert_overwrite": "FAILED"},
        headers={"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"},
    )

    assert response.status == 200, await response.text()
    assert await alert_overwrite(db, print_id) == "FAILED"


async def test_session_get_from_foreign_origin_is_answered(client, logged_in):
    _, print_id = logged_in

    response = await client.get(
        f"{PRINTS}{print_id}/", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["id"] == print_id


async def test_token_patch_from_foreign_origin_is_applied(client, db, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    response = await client.patch(
        f"{PRINTS}{print_id}/",
        json={"alert_overwrite": "FAILED"},
        headers={**headers, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    )

    assert response.status == 200, await response.text()
    assert await alert_overwrite(db, print_id) == "FAILED"


async def test_login_from_foreign_origin_answers_403_without_cookie(client, owner):
    response = await client.post(
        LOGIN,
        json={"email": "owner@example.com", "password": PASSWORD},
        headers={"Origin": EVIL},
    )

    assert response.status == 403, await response.text()
    assert SESSION_COOKIE not in response.cookies
