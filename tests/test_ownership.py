"""A handler written with no thought of ownership still cannot reach another user's print.

The print views below read and change prints by id alone, on a connection taken straight
from the app's pool. They are mounted with create_app's extra_routes, behind the same
middleware as the API, and the middleware alone must keep them from other users' prints and
from anonymous callers. The list view shows what a handler of a route without a print id is
given: no bare connection, only the statement runner bound to the caller.
"""

import pytest
from aiohttp import web

from service.app import create_app
from service.keys import DATA, LEASE, POOL
from tests.conftest import at

NOT_FOUND = {"detail": "Not found."}
NAIVE_PRINT = "/api/v1/prints/{print_id}/naive"
NAIVE_ALL = "/api/v1/naive/prints"


def naive_views(calls: list) -> list[tuple[str, type[web.View]]]:
    """Routes whose views record each run in ``calls`` and never look at the user."""

    class NaivePrintView(web.View):
        async def get(self) -> web.Response:
            calls.append(("GET", self.request.match_info["print_id"]))
            async with self.request.app[POOL].acquire() as connection:
                row = await connection.fetchrow(
                    "SELECT id, filename FROM prints WHERE id = $1",
                    int(self.request.match_info["print_id"]),
                )
            return web.json_response({"id": row["id"], "filename": row["filename"]})

        async def patch(self) -> web.Response:
            calls.append(("PATCH", self.request.match_info["print_id"]))
            async with self.request.app[POOL].acquire() as connection:
                await connection.execute(
                    "UPDATE prints SET alert_overwrite = 'FAILED' WHERE id = $1",
                    int(self.request.match_info["print_id"]),
                )
            return web.json_response({"done": True})

    class NaiveAllView(web.View):
        async def get(self) -> web.Response:
            calls.append(("GET", None))
            rows = await self.request[DATA].fetch("list_prints", None, 0, 100)
            return web.json_response(
                {
                    "bare_connection": LEASE in self.request,
                    "prints": [row["id"] for row in rows],
                }
            )

    return [(NAIVE_PRINT, NaivePrintView), (NAIVE_ALL, NaiveAllView)]


@pytest.fixture
def calls() -> list:
    """Each run of a naive view, as (method, print id as given)."""
    return []


@pytest.fixture
async def naive_client(aiohttp_client, settings, db, calls):
    """A test client of the real app with the naive views mounted."""
    return await aiohttp_client(create_app(settings, extra_routes=naive_views(calls)))


@pytest.fixture
async def foreign_print(factory, stranger):
    return await factory.print(stranger[0], filename="secret.gcode")


def naive_url(print_id) -> str:
    return NAIVE_PRINT.format(print_id=print_id)


async def test_naive_view_on_own_print_runs(naive_client, factory, owner, calls):
    user_id, headers = owner
    print_id = await factory.print(user_id, filename="mine.gcode")

    response = await naive_client.get(naive_url(print_id), headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == {"id": print_id, "filename": "mine.gcode"}
    assert calls == [("GET", str(print_id))]


async def test_naive_view_on_foreign_print_returns_not_found_without_running(
    naive_client, owner, foreign_print, calls
):
    _, headers = owner

    response = await naive_client.get(naive_url(foreign_print), headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND
    assert calls == []


async def test_naive_view_on_foreign_print_runs_for_its_owner(
    naive_client, stranger, foreign_print, calls
):
    _, headers = stranger

    response = await naive_client.get(naive_url(foreign_print), headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == {"id": foreign_print, "filename": "secret.gcode"}
    assert calls == [("GET", str(foreign_print))]


async def test_naive_view_on_deleted_own_print_returns_not_found_without_running(
    naive_client, factory, owner, calls
):
    user_id, headers = owner
    print_id = await factory.print(user_id, deleted_at=at("2026-03-02T00:00:00"))

    response = await naive_client.get(naive_url(print_id), headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND
    assert calls == []


@pytest.mark.parametrize("raw_id", ["1000000", "abc", "0", "01", "-1", str(2**63)])
async def test_naive_view_on_missing_or_malformed_id_returns_not_found_without_running(
    naive_client, factory, owner, calls, raw_id
):
    user_id, headers = owner
    await factory.print(user_id)

    response = await naive_client.get(naive_url(raw_id), headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND
    assert calls == []


async def test_naive_view_not_found_is_identical_to_the_api_one(
    naive_client, owner, foreign_print
):
    _, headers = owner
    api = await naive_client.get(f"/api/v1/prints/{foreign_print}/", headers=headers)

    response = await naive_client.get(naive_url(foreign_print), headers=headers)

    assert response.status == 404, await response.text()
    assert await response.read() == await api.read()
    assert response.headers["Content-Type"] == api.headers["Content-Type"]


async def test_naive_change_of_foreign_print_returns_not_found_and_changes_nothing(
    naive_client, db, owner, foreign_print, calls
):
    _, headers = owner

    response = await naive_client.patch(naive_url(foreign_print), json={}, headers=headers)

    assert response.status == 404, await response.text()
    assert await response.json() == NOT_FOUND
    assert calls == []

    overwrite = await db.fetchval(
        "SELECT alert_overwrite FROM prints WHERE id = $1", foreign_print
    )
    assert overwrite is None


async def test_naive_view_without_credentials_returns_401_without_running(
    naive_client, factory, owner, calls
):
    user_id, _ = owner
    print_id = await factory.print(user_id)

    response = await naive_client.get(naive_url(print_id))

    assert response.status == 401, await response.text()
    assert await response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="printapi"'
    assert calls == []


async def test_naive_route_without_print_id_and_credentials_returns_401_without_running(
    naive_client, calls
):
    response = await naive_client.get(NAIVE_ALL)

    assert response.status == 401, await response.text()
    assert await response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="printapi"'
    assert calls == []


async def test_naive_route_without_print_id_and_revoked_token_returns_401_without_running(
    naive_client, db, owner, calls
):
    _, headers = owner
    await db.execute("UPDATE api_tokens SET revoked_at = now()")

    response = await naive_client.get(NAIVE_ALL, headers=headers)

    assert response.status == 401, await response.text()
    assert await response.json() == {"detail": "Invalid or revoked token."}
    assert calls == []


async def test_route_without_print_id_gets_only_the_runner_bound_to_the_caller(
    naive_client, factory, owner, foreign_print, calls
):
    user_id, headers = owner
    own_print = await factory.print(user_id)

    response = await naive_client.get(NAIVE_ALL, headers=headers)

    assert response.status == 200, await response.text()
    assert await response.json() == {"bare_connection": False, "prints": [own_print]}
    assert calls == [("GET", None)]
