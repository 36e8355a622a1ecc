"""What the OpenAPI schema says beyond each view's ``@extend_schema``: the API's error answers (documented once for
every operation) and strict request bodies; and a JSON 404 for ``/api/`` URLs that match no route.

Every view answers errors through DRF (``api.base``): ``{"detail": "…"}`` for 401, 403, 404 and 429, and
``{field: [messages]}`` for a refused parameter or body (400). Rather than repeat them in each ``@extend_schema``,
:func:`error_responses_document` (a drf-spectacular postprocessing hook) adds them to each operation of the schema,
keeping what a view documents itself (an import's 400 report becomes "the report or a validation error").
A :class:`~api.base.StrictSerializer` body refuses unknown fields, so its schema says
``additionalProperties: false``.

``config/urls.py`` imports this module (for ``handler404``), which registers the serializer extension before any
schema is generated.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.extensions import OpenApiSerializerExtension

ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "description": "Why the request was refused.",
}
VALIDATION_ERROR = {
    "type": "object",
    "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "object"}, {"type": "string"}]},
    "description": "Each refused parameter or field with its messages (non_field_errors: the request as a whole), "
    "or detail: a body that could not be read.",
}
ERROR_RESPONSES = {
    "400": ("ValidationError", "A parameter or body this operation does not accept."),
    "401": ("Error", "No credential, or an invalid or revoked API key."),
    "403": ("Error", "The credential has no access to this API, or is read-only and this operation writes."),
    "404": ("Error", "No such object in the caller's organization (another organization's object looks the same)."),
    "413": ("Error", "The body is larger than the limit (DATA_UPLOAD_MAX_MEMORY_SIZE; IMPORT_MAX_BYTES for imports)."),
    "429": ("Error", "Too many requests from this credential; Retry-After says when to try again."),
    "503": ("Error", "The database or job queue is briefly unavailable; nothing was stored. Retry-After says when."),
}
WRITES = frozenset({"post", "put", "patch"})


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses_document(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the error responses to every ``/api/v1/`` operation (404 only where the path names an object, 413 only
    where a body is sent)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({"Error": ERROR, "ValidationError": VALIDATION_ERROR})
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation.setdefault("responses", {})
            for code, (component, description) in ERROR_RESPONSES.items():
                if (code == "404" and "{" not in path) or (code == "413" and method not in WRITES):
                    continue
                ref = {"$ref": f"#/components/schemas/{component}"}
                declared = responses.get(code, {}).get("content", {}).get("application/json")
                if declared is None:
                    responses[code] = _json_response(description, ref)
                elif declared.get("schema") != ref:
                    declared["schema"] = {"anyOf": [declared["schema"], ref]}
    return result


class StrictSerializerSchema(OpenApiSerializerExtension):
    target_class = "api.base.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {**auto_schema._map_basic_serializer(self.target, direction), "additionalProperties": False}


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: an ``/api/`` URL that matches no route answers like the API's own 404 (JSON), not with the
    site's HTML page (an id that is not a number, ``/api/v1/projects/abc/``, is such a URL)."""
    if request.path.startswith("/api/"):
        # Byte for byte the API's own 404 (DRF writes compact JSON): a path no route matches (a negative id) must
        # answer like an id that exists nowhere.
        return JsonResponse({"detail": "Not found."}, status=404, json_dumps_params={"separators": (",", ":")})
    return defaults.page_not_found(request, exception)  # type: ignore[arg-type]
