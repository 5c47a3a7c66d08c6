"""The OpenAPI document: served as it is in the repository, and in step with the code.

Routes and documented operations are compared both ways, so that neither can gain an
operation the other lacks; names, choices and bounds are compared with the code's own
constants; and real answers are checked against the document's schemas.
"""

import io
import json

import attrs
import jsonschema_rs
import pytest
import schemathesis
from aiohttp import hdrs

from service.app import SESSION_COOKIE, create_app
from service.models import FEEDBACK_FIELDS, PRINT_FIELDS, AlertOverwrite, Answer, Print
from service.openapi import DOCUMENT_PATH, DOCUMENT_ROUTE, ApiDocument, ApiDocumentError
from service.params import MAX_BIGINT, MAX_LIMIT, Filter, Sorting
from service.settings import Settings
from tests.conftest import TEST_SECRET_KEY, at

DOCUMENT = json.loads(DOCUMENT_PATH.read_bytes())
SCHEMAS = DOCUMENT["components"]["schemas"]
PARAMETERS = DOCUMENT["components"]["parameters"]
#: The methods an OpenAPI path item may hold, as aiohttp spells them.
HTTP_METHODS = {method.lower() for method in hdrs.METH_ALL}
#: The Print's fields a PATCH may change; the others are read-only.
WRITABLE_FIELDS = {"alert_overwrite", "printshotfeedback_set"}


def conforms(value, schema_name: str) -> list[str]:
    """The ways ``value`` breaks the document's schema ``schema_name``; empty when it fits."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": DOCUMENT["components"]}
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    return [error.message for error in validator.iter_errors(value)]


def routed_operations() -> set[tuple[str, str]]:
    """(method, path) for every operation the app answers, aliases under the slashed path.

    The app registers each path both with and without its trailing slash, for the same
    view: the document names the slashed form only, so a path whose slashed form is also
    routed counts as that form.
    """
    app = create_app(Settings(database_url="postgresql://unused", secret_key=TEST_SECRET_KEY))
    paths = {route.resource.canonical for route in app.router.routes()}
    operations = set()
    for route in app.router.routes():
        path = route.resource.canonical
        if not path.endswith("/") and path + "/" in paths:
            path += "/"
        if route.method == hdrs.METH_ANY:
            # A class-based view: it answers the methods it defines, 405 to the others.
            methods = {method for method in HTTP_METHODS if hasattr(route.handler, method)}
        else:
            methods = {route.method.lower()}
        operations.update((method, path) for method in methods)
    return operations


def documented_operations() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_routed_operation_is_documented():
    assert routed_operations() - documented_operations() == set()


def test_every_documented_operation_is_routed():
    assert documented_operations() - routed_operations() == set()


def test_every_documented_slashed_path_is_routed_without_its_slash_too():
    app = create_app(Settings(database_url="postgresql://unused", secret_key=TEST_SECRET_KEY))
    routed = {route.resource.canonical for route in app.router.routes()}
    slashed = {path for path in DOCUMENT["paths"] if path.endswith("/")}

    assert {path.rstrip("/") for path in slashed} - routed == set()


def test_document_is_valid_openapi_3_1():
    schema = schemathesis.openapi.from_dict(DOCUMENT)

    schema.validate()
    assert DOCUMENT["openapi"] == "3.1.0"


async def test_document_is_served_without_credentials_exactly_as_the_file(client):
    response = await client.get(DOCUMENT_ROUTE)

    assert response.status == 200, await response.text()
    assert await response.read() == DOCUMENT_PATH.read_bytes()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"


def test_document_that_is_not_json_stops_the_start_naming_the_file(tmp_path):
    path = tmp_path / "openapi.json"
    path.write_text('{"openapi": "3.1.0",')

    with pytest.raises(ApiDocumentError, match=f"^{path} is not valid JSON: "):
        ApiDocument.load(path)


async def test_document_answers_304_to_its_own_etag(client):
    etag = (await client.get(DOCUMENT_ROUTE)).headers["ETag"]

    response = await client.get(DOCUMENT_ROUTE, headers={"If-None-Match": etag})

    assert response.status == 304
    assert await response.read() == b""
    assert response.headers["ETag"] == etag


async def test_document_route_takes_only_get(client):
    response = await client.post(DOCUMENT_ROUTE, data=b"{}")

    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert await response.json() == {"detail": 'Method "POST" not allowed.'}


def test_print_schema_names_every_field_of_a_print():
    assert list(SCHEMAS["Print"]["properties"]) == [field.name for field in attrs.fields(Print)]
    assert set(SCHEMAS["Print"]["required"]) == PRINT_FIELDS


def test_print_schema_marks_all_but_the_writable_fields_read_only():
    properties = SCHEMAS["Print"]["properties"]
    read_only = {name for name, field in properties.items() if field.get("readOnly")}

    assert read_only == PRINT_FIELDS - WRITABLE_FIELDS


def test_patch_body_takes_the_print_fields_and_no_other():
    change = SCHEMAS["PrintChange"]
    ignored = {name for name, field in change["properties"].items() if field.get("readOnly")}

    assert set(change["properties"]) == PRINT_FIELDS
    assert ignored == PRINT_FIELDS - WRITABLE_FIELDS
    assert change["additionalProperties"] is False


def test_frame_schemas_name_every_field_of_a_frame():
    feedback = SCHEMAS["PrintShotFeedback"]

    assert set(feedback["properties"]) == FEEDBACK_FIELDS
    assert set(feedback["required"]) == FEEDBACK_FIELDS
    assert set(SCHEMAS["FeedbackAnswer"]["properties"]) == FEEDBACK_FIELDS
    assert SCHEMAS["FeedbackAnswer"]["additionalProperties"] is False


def test_verdict_choices_are_the_code_s():
    assert SCHEMAS["AlertOverwrite"]["enum"] == [*AlertOverwrite, None]
    assert SCHEMAS["Answer"]["enum"] == [*Answer, None]


def test_list_parameter_choices_and_bounds_are_the_code_s():
    assert PARAMETERS["filter"]["schema"]["enum"] == list(Filter)
    assert PARAMETERS["sorting"]["schema"]["enum"] == list(Sorting)
    assert PARAMETERS["start"]["schema"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_BIGINT,
        "default": 0,
    }
    assert PARAMETERS["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    assert PARAMETERS["print_id"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_BIGINT,
    }


def test_session_cookie_scheme_names_the_app_s_cookie():
    scheme = DOCUMENT["components"]["securitySchemes"]["sessionCookie"]

    assert (scheme["in"], scheme["name"]) == ("cookie", SESSION_COOKIE)


async def test_print_with_every_field_set_conforms(client, factory, owner):
    user_id, headers = owner
    printer_id = await factory.printer(user_id)
    fields = {
        name: at("2026-03-01T12:00:00.25")
        for name in (
            "started_at",
            "finished_at",
            "uploaded_at",
            "alerted_at",
            "alert_acknowledged_at",
            "alert_muted_at",
            "paused_at",
        )
    }
    print_id = await factory.print(
        user_id,
        printer_id=printer_id,
        video_url="https://example.com/v.mp4",
        tagged_video_url="https://example.com/t.mp4",
        poster_url="https://example.com/p.jpg",
        prediction_json_url="https://example.com/p.json",
        alert_overwrite="FAILED",
        **fields,
    )
    await factory.feedback(print_id, answer="LOOKS_OK", answered_at=at("2026-03-01T13:00"))
    await factory.feedback(print_id)

    response = await client.get(f"/api/v1/prints/{print_id}/", headers=headers)

    assert response.status == 200, await response.text()
    assert conforms(await response.json(), "Print") == []


async def test_print_with_every_optional_field_null_conforms(client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)

    response = await client.get(f"/api/v1/prints/{print_id}/", headers=headers)

    assert response.status == 200, await response.text()
    assert conforms(await response.json(), "Print") == []


@pytest.mark.parametrize("query", ["limit=5", "filter=failed&sorting=up&start=-1&limit=x"])
async def test_list_parameter_errors_conform(client, owner, query):
    _, headers = owner

    response = await client.get(f"/api/v1/prints/?{query}", headers=headers)

    assert response.status == 400, await response.text()
    assert conforms(await response.json(), "ListParameterErrors") == []


async def test_unauthorized_answer_conforms(client):
    response = await client.get("/api/v1/prints/")

    assert response.status == 401
    assert conforms(await response.json(), "Detail") == []
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="printapi"'


async def test_login_errors_conform(client):
    response = await client.post("/api/v1/auth/login/", json={"email": "", "extra": 1})

    assert response.status == 400, await response.text()
    assert conforms(await response.json(), "CredentialsErrors") == []


async def test_body_over_the_size_limit_answers_the_documented_413(client, factory, owner):
    user_id, headers = owner
    print_id = await factory.print(user_id)
    body = b'{"alert_overwrite": "FAILED", "filename": "' + b"x" * 1024**2 + b'"}'

    response = await client.patch(
        f"/api/v1/prints/{print_id}/",
        data=io.BytesIO(body),
        headers={**headers, "Content-Type": "application/json"},
    )

    assert response.status == 413, await response.text()
    assert conforms(await response.json(), "Detail") == []
