"""OpenAPI descriptions of Stratum's authentication schemes."""

import json
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "registry.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Personal access token (stm_...)."}


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "registry.authentication.BasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "Username with password or access token."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "registry.authentication.CsrfSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


# The API's error shape (errors.error_body): what every 4xx and every 503 answers, whatever the operation.
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Machine-readable reason, e.g. RESOURCE_DOES_NOT_EXIST."},
                "message": {"type": "string", "description": "What went wrong, for a person."},
                "details": {"description": "Per-field messages or other detail; null when there is none.",
                            "nullable": True},
            },
            "required": ["code", "message", "details"],
        },
    },
    "required": ["error"],
}
ERROR_RESPONSES = {
    "4XX": "The request was refused: bad input, no access, not found, a conflict with the current state, too large.",
    "503": "The database was busy (a lock or statement timeout); retry after the Retry-After header's seconds.",
}
# Operations that take a file answer 507 when the artifact disk is full (nothing of the upload is kept).
UPLOAD_MEDIA_TYPES = {"multipart/form-data", "application/octet-stream"}
FULL_DISK = "The artifact store's disk is full or over quota; nothing of the upload was kept."
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def _takes_a_file(operation: dict[str, Any], components: dict[str, Any]) -> bool:
    """Whether the operation's body carries a file: binary content, directly or in a multipart field."""
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        if media_type not in UPLOAD_MEDIA_TYPES:
            continue
        schema = content.get("schema", {})
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = components.get(ref.rsplit("/", 1)[-1], {})
        if '"binary"' in json.dumps(schema):
            return True
    return False


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the error shape as the `Error` component and as every operation's client-error and database-busy
    response, and 507 for uploads (a postprocessing hook: one description instead of an annotation on each of a
    hundred views)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                responses.setdefault(code, {"description": description, "content": body})
            if _takes_a_file(operation, result["components"]["schemas"]):
                responses.setdefault("507", {"description": FULL_DISK, "content": body})
    return result
