"""The app answers an authenticated list request with the owner's prints."""

from tests.conftest import at


async def test_list_without_sorting_returns_own_prints_in_id_order(client, factory, owner):
    user_id, headers = owner
    second = await factory.print(user_id, started_at=at("2026-03-02T10:00:00"))
    first = await factory.print(user_id, started_at=at("2026-03-03T10:00:00"))

    response = await client.get("/api/v1/prints/", headers=headers)

    assert response.status == 200, await response.text()
    assert [item["id"] for item in await response.json()] == [second, first]
