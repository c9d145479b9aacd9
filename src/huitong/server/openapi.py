"""An OpenAPI 3 description of the FHIR API, generated from the routing table and the
operations registry (the same tables the CapabilityStatement reads), so that API tools and
fuzzers (schemathesis) see exactly what is routed.

Resource types are a path parameter with an ``enum`` of every R4 type rather than one path
per type; operations are expanded into concrete paths (``/Patient/{id}/$everything``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import huitong
from huitong.fhir.definitions import FHIR_VERSION, resource_types
from huitong.server.operations import OPERATIONS
from huitong.server.routing import ROUTES

__all__ = ["openapi_document"]

_FHIR_JSON = "application/fhir+json"
_OUTCOME = {
    "description": "OperationOutcome",
    "content": {_FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
}
_RESOURCE_BODY = {
    "required": True,
    "content": {
        _FHIR_JSON: {"schema": {"$ref": "#/components/schemas/Resource"}},
        "application/json": {"schema": {"$ref": "#/components/schemas/Resource"}},
    },
}
_PATCH_BODY = {
    "required": True,
    "content": {"application/json-patch+json": {"schema": {"type": "array", "items": {
        "type": "object", "required": ["op", "path"],
        "properties": {"op": {"type": "string"}, "path": {"type": "string"}, "value": {}},
    }}}},
}
_FORM_BODY = {
    "required": False,
    "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "additionalProperties": {"type": "string"},
    }}},
}
_COMMON_QUERY = [
    {"name": "_format", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "_pretty", "in": "query", "required": False,
     "schema": {"type": "string", "enum": ["true", "false"]}},
]
_PAGING_QUERY = [
    {"name": "_count", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 0}},
]


def _path_param(name: str, types: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if name in ("type", "compartment_type"):
        schema["enum"] = types or sorted(resource_types())
    elif name == "id":
        schema["pattern"] = "^[A-Za-z0-9\\-.]{1,64}$"
    elif name == "vid":
        schema["pattern"] = "^[0-9]{1,18}$"
    elif name == "compartment":
        schema["enum"] = ["*", *sorted(resource_types())]
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _operation(method: str, summary: str, code: str, params: list[dict[str, Any]],
               write_body: bool, path: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": f"{method.lower()}:{path}",
        "tags": [code],
        "parameters": [*params, *_COMMON_QUERY],
        "responses": {
            "200": {"description": "OK", "content": {_FHIR_JSON: {"schema": {
                "$ref": "#/components/schemas/Resource"}}}},
            "4XX": _OUTCOME,
        },
    }
    if method in ("GET",) and code.startswith(("search", "history")):
        op["parameters"] += _PAGING_QUERY
    if code.startswith("search") and method == "POST":
        op["requestBody"] = _FORM_BODY
    elif method == "PATCH":
        op["requestBody"] = _PATCH_BODY
    elif write_body and method in ("POST", "PUT"):
        op["requestBody"] = _RESOURCE_BODY
    if method in ("POST",) and code == "create":
        op["responses"]["201"] = {"description": "Created"}
    if method == "PUT":
        op["responses"]["201"] = {"description": "Created (update-as-create)"}
    if method == "DELETE":
        op["responses"]["204"] = {"description": "Deleted (or nothing to delete)"}
    return op


def _template(pattern: tuple[str, ...]) -> str:
    return "/" + "/".join(pattern)


@cache
def _paths() -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        if "{op}" in route.pattern:
            continue
        path = _template(route.pattern)
        names = [t[1:-1] for t in route.pattern if t.startswith("{")]
        params = [_path_param(n) for n in names]
        item: dict[str, Any] = {}
        for method, i in route.methods.items():
            code = i.codes[0]
            item[method.lower()] = _operation(method, i.summary, code, params, i.write, path)
        paths[path] = item
    for op in OPERATIONS:
        types = sorted(op.types) if op.types else None
        for level in sorted(op.levels):
            prefix = {"system": (), "type": ("{type}",), "instance": ("{type}", "{id}")}[level]
            if types and len(types) == 1 and prefix:
                prefix = (types[0], *prefix[1:])
            pattern = (*prefix, f"${op.name}")
            path = _template(pattern)
            names = [t[1:-1] for t in pattern if t.startswith("{")]
            params = [_path_param(n, types) for n in names]
            methods = ("POST",) if op.affects_state else ("GET", "POST")
            paths[path] = {
                m.lower(): {
                    **_operation(m, op.summary, "operation", params, False, path),
                    **({"requestBody": {"required": False, "content": {_FHIR_JSON: {
                        "schema": {"$ref": "#/components/schemas/Resource"}}}}}
                       if m == "POST" else {}),
                }
                for m in methods
            }
    return paths


def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document for the FHIR API at ``base_url``."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Huitong FHIR R4 API",
            "version": huitong.__version__,
            "description": f"FHIR {FHIR_VERSION} REST API (JSON only). Generated from the "
            "server's routing table; see /metadata for the CapabilityStatement.",
        },
        "servers": [{"url": base_url}],
        "paths": _paths(),
        "components": {"schemas": {
            "Resource": {
                "type": "object", "required": ["resourceType"],
                "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
                "additionalProperties": True,
            },
            "OperationOutcome": {
                "type": "object", "required": ["resourceType", "issue"],
                "properties": {
                    "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                    "issue": {"type": "array", "items": {"type": "object"}},
                },
            },
        }},
    }
