"""CORS for the pages of PRINTAPI_TRUSTED_ORIGINS: a preflight answered, and answers readable
with the session cookie, by those origins only."""

import attrs
import pytest

from service.app import create_app

TRUSTED = "https://app.example.com"
PREFLIGHT = {
    "Origin": TRUSTED,
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "content-type",
}


@pytest.fixture
async def cors_client(aiohttp_client, settings, db):
    return await aiohttp_client(create_app(attrs.evolve(settings, trusted_origins=(TRUSTED,))))


async def test_trusted_origin_preflight_is_answered_without_credentials(cors_client, factory):
    response = await cors_client.options("/api/v1/prints/1/", headers=PREFLIGHT)

    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == TRUSTED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, PATCH, POST"
    assert response.headers["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, If-None-Match, X-Request-ID"
    )
    assert response.headers["Access-Control-Max-Age"] == "600"


async def test_untrusted_origin_preflight_gets_no_yes(cors_client):
    headers = {**PREFLIGHT, "Origin": "https://evil.example.net"}

    response = await cors_client.options("/api/v1/prints/1/", headers=headers)

    assert response.status == 401
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_trusted_origin_reads_a_patch_answer_and_its_etag(cors_client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    response = await cors_client.patch(
        f"/api/v1/prints/{print_id}/",
        json={"alert_overwrite": "FAILED"},
        headers={**headers, "Origin": TRUSTED},
    )

    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == TRUSTED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Expose-Headers"] == "ETag, Retry-After, X-Request-ID"
    assert "Origin" in response.headers.getall("Vary")


async def test_trusted_origin_reads_errors_too(cors_client):
    response = await cors_client.get("/api/v1/prints/", headers={"Origin": TRUSTED})

    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == TRUSTED


async def test_other_origins_get_no_cors_headers(cors_client, owner):
    _, headers = owner

    response = await cors_client.get(
        "/api/v1/prints/", headers={**headers, "Origin": "https://evil.example.net"}
    )

    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_no_trusted_origins_means_no_cors_at_all(client, owner):
    _, headers = owner

    response = await client.get("/api/v1/prints/", headers={**headers, "Origin": TRUSTED})

    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" not in response.headers.get("Vary", "")
