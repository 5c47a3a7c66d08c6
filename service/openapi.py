"""The OpenAPI document of the API, docs/openapi.json, read once at start and served as is."""

import hashlib
import json
from pathlib import Path

import attrs

from service import PROJECT_ROOT

DOCUMENT_PATH = PROJECT_ROOT / "docs" / "openapi.json"

#: Where the document is served; the document describes this route too.
DOCUMENT_ROUTE = "/api/v1/openapi.json"


class ApiDocumentError(Exception):
    """The OpenAPI document cannot be read or is not a JSON object."""


@attrs.frozen
class ApiDocument:
    """The document's bytes, exactly as in the file, and a strong ETag of them."""

    body: bytes
    etag: str

    @classmethod
    def load(cls, path: Path = DOCUMENT_PATH) -> "ApiDocument":
        """Reads and checks the document; a missing or broken file stops the start."""
        try:
            body = path.read_bytes()
        except OSError as error:
            raise ApiDocumentError(f"cannot read {path}: {error.strerror}") from None
        try:
            parsed = json.loads(body)
        except ValueError as error:
            raise ApiDocumentError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(parsed, dict) or "openapi" not in parsed:
            raise ApiDocumentError(f"{path} is not an OpenAPI document")

        digest = hashlib.blake2b(body, digest_size=16, person=b"printapi-openapi").hexdigest()
        return cls(body=body, etag=f'"{digest}"')
