"""The OpenAPI document, with the app's real error shape instead of FastAPI's default 422."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from kmg_autotrader.webui.schemas import ErrorResponse

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document (cached on the app): every 422 uses :class:`ErrorResponse`."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in (
        ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        .get("$defs", {})
        .items()
    ):
        components.setdefault(name, definition)
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    error_schema.pop("$defs", None)
    components.setdefault("ErrorResponse", error_schema)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            response = operation.get("responses", {}).get("422")
            if response is None:
                continue
            response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
            if response.get("description") == "Validation Error":
                response["description"] = "Invalid parameters or body; nothing was changed."
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema
