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
from huitong.server.operations import (
    bulk_import,
    everything,
    identity,
    meta,
    terminology,
    validate,
)
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
    _op("match", "type", "Patient", identity.match,
        "http://hl7.org/fhir/OperationDefinition/Patient-match",
        "Golden (master) records matching a Patient, scored 0-1 with a match grade"),
    _op("ihe-pix", "type", "Patient", identity.ihe_pix,
        "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix",
        "IHE PIXm: a patient's identifiers and records in other domains"),
    *(_op(*row) for row in terminology.DEFINITIONS),
    _op("import", "system", None, bulk_import.bulk_import,
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import",
        "Bulk NDJSON import from the import directory (202 + status URL, resumable)",
        affects_state=True),
    _op("import-status", "system", None, bulk_import.import_status,
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import",
        "Progress and per-file outcome of a bulk import job"),
)


def find_operation(name: str, level: str, resource_type: str | None) -> Operation:
    """The operation ``$name`` at ``level`` on ``resource_type``; NOT_FOUND otherwise.
    Several entries may share a name on different types (CodeSystem and ValueSet
    ``$validate-code``)."""
    named = [op for op in OPERATIONS if op.name == name]
    for op in named:
        if level in op.levels and (
            resource_type is None or op.types is None or resource_type in op.types
        ):
            return op
    if named:
        where = f"on {resource_type}" if resource_type else "at system level"
        raise FhirError(Category.NOT_FOUND, f"${name} is not available {where} ({level})")
    raise FhirError(Category.NOT_FOUND, f"unknown operation ${name}")


def dispatch_operation(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    level = "instance" if "id" in p else "type" if "type" in p else "system"
    op = find_operation(p["op"].removeprefix("$"), level, p.get("type"))
    if op.affects_state and req.method not in ("POST",):
        from huitong.server.routing import MethodNotAllowed

        raise MethodNotAllowed(req.method, req.path, ("POST",))
    return op.handler(ctx, req)
