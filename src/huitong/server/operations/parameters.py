"""Reading operation input — https://hl7.org/fhir/R4/operations.html#request.

GET passes parameters in the query string; POST in a ``Parameters`` body. Both are returned
as ``(name, value)`` pairs: query values as strings, body values as the ``value[x]`` (or the
``resource``) of each parameter.
"""

from __future__ import annotations

from typing import Any

from huitong.fhir.errors import Category, FhirError
from huitong.server.request import FhirRequest

__all__ = ["operation_inputs", "parameters_resource"]


def _value(param: dict[str, Any]) -> Any:
    if "resource" in param:
        return param["resource"]
    for key, value in param.items():
        if key.startswith("value"):
            return value
    return None


def operation_inputs(req: FhirRequest) -> list[tuple[str, Any]]:
    """Query parameters, then (for POST with a Parameters body) the body's parameters."""
    inputs: list[tuple[str, Any]] = list(req.criteria())
    if req.method == "POST" and (req.body.strip() or req.parsed is not None):
        body = req.json_body()
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            params = body.get("parameter", [])
            if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
                raise FhirError(Category.INVALID, "Parameters.parameter must be an array")
            inputs += [(str(p.get("name")), _value(p)) for p in params]
    return inputs


def parameters_resource(name: str, value_key: str, value: Any) -> dict[str, Any]:
    """A one-parameter ``Parameters`` resource."""
    return {"resourceType": "Parameters", "parameter": [{"name": name, value_key: value}]}
