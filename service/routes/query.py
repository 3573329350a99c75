"""Query parameters declared once, as a pydantic model, for the prediction routes.

FastAPI solves a route's parameters through its dependency machinery on every request: for
the two optional parameters of /v1/predict that was 33 us of a 357 us prediction, in
process (bench/asgi_predict.py, issue 14's note). Declared as a model instead, they are
validated by the same pydantic rules (the same lax booleans and integers, the same errors,
raised as FastAPI's `RequestValidationError` so the app's handler words the 422), only
when the request has a query string; and the OpenAPI description of the route is generated
from the same model (`openapi_parameters`), so it cannot drift from what is accepted.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

Model = TypeVar("Model", bound=BaseModel)


def openapi_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI `parameters` (in: query) of each field of `model`, in declaration order,
    with the JSON schema pydantic gives the field (as FastAPI writes a `Query`)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in required}
        parameter["schema"] = field_schema
        if "description" in field_schema:
            parameter["description"] = field_schema["description"]
        parameters.append(parameter)
    return parameters


def read_query(model: type[Model], request: Request, default: Model) -> Model:
    """The request's query parameters as `model` (`default` when there are none; unknown
    names are ignored and, as FastAPI does, a repeated name's last value counts).
    RequestValidationError, located at ("query", name), when a value does not validate."""
    if not request.scope["query_string"]:
        return default
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in errors]
        ) from None
