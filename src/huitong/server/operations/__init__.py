"""FHIR operations — https://hl7.org/fhir/R4/operations.html.

:data:`OPERATIONS` is the one registry: :func:`dispatch_operation` routes ``$name`` through
it and the CapabilityStatement and OpenAPI document list it. Failure contract: NOT_FOUND
(404) for an operation we do not have, or not at that level or on that type; NOT_ALLOWED
(405) for GET on an operation that changes state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from huitong.fhir.errors import Category, FhirError
from huitong.server.operations import everything, meta, validate
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse

__all__ = ["OPERATIONS", "Operation", "dispatch_operation", "find_operation"]

Handler = Callable[[ServerContext, FhirRequest], FhirResponse]


@dataclass(frozen=True, slots=True)
class Operation:
    """``types`` None: any resource type. ``affects_state``: POST only."""

    name: str
    levels: frozenset[str]
    types: frozenset[str] | None
    handler: Handler
    definition: str
    summary: str
    affects_state: bool = False


def _op(name: str, levels: str, types: str | None, handler: Handler, definition: str,
        summary: str, affects_state: bool = False) -> Operation:
    return Operation(
        name, frozenset(levels.split()), frozenset(types.split()) if types else None, handler,
        definition, summary, affects_state,
    )


OPERATIONS: tuple[Operation, ...] = (
    _op("everything", "instance", "Patient", everything.everything,
        "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        "Everything in the patient's record (compartment + referenced resources)"),
    _op("validate", "type instance", None, validate.validate,
        "http://hl7.org/fhir/OperationDefinition/Resource-validate",
        "Validate a resource without storing it"),
    _op("meta", "system type instance", None, meta.meta,
        "http://hl7.org/fhir/OperationDefinition/Resource-meta",
        "Tags, profiles and security labels in use"),
    _op("meta-add", "instance", None, meta.meta_add,
        "http://hl7.org/fhir/OperationDefinition/Resource-meta-add",
        "Add tags, profiles or security labels", affects_state=True),
    _op("meta-delete", "instance", None, meta.meta_delete,
        "http://hl7.org/fhir/OperationDefinition/Resource-meta-delete",
        "Remove tags, profiles or security labels", affects_state=True),
)


def find_operation(name: str, level: str, resource_type: str | None) -> Operation:
    """The operation ``$name`` at ``level`` on ``resource_type``; NOT_FOUND otherwise."""
    for op in OPERATIONS:
        if op.name != name:
            continue
        if level not in op.levels or (
            resource_type is not None and op.types is not None and resource_type not in op.types
        ):
            where = f"on {resource_type}" if resource_type else "at system level"
            raise FhirError(Category.NOT_FOUND, f"${name} is not available {where} ({level})")
        return op
    raise FhirError(Category.NOT_FOUND, f"unknown operation ${name}")


def dispatch_operation(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    level = "instance" if "id" in p else "type" if "type" in p else "system"
    op = find_operation(p["op"].removeprefix("$"), level, p.get("type"))
    if op.affects_state and req.method not in ("POST",):
        from huitong.server.routing import MethodNotAllowed

        raise MethodNotAllowed(req.method, req.path, ("POST",))
    return op.handler(ctx, req)
