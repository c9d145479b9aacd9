"""``$validate`` — https://hl7.org/fhir/R4/resource-operation-validate.html.

``POST Type/$validate`` or ``POST Type/id/$validate`` with either a ``Parameters`` body
(parameter ``resource``) or the resource itself. Nothing is stored. The answer is always
``200`` with an OperationOutcome: the validation issues, or one informational "All OK".
``GET Type/id/$validate`` (no body) validates the stored current version.

Failure contract: INVALID (400) only when there is no resource to validate; a resource that
fails validation is a successful operation reporting errors. ``mode`` and ``profile`` inputs
are accepted but only structural validation against the base type is performed.
"""

from __future__ import annotations

from typing import Any

from huitong.fhir.errors import Category, FhirError, Issue
from huitong.fhir.outcome import error_outcome, operation_outcome
from huitong.server.operations.parameters import operation_inputs
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse

__all__ = ["validate"]


def _target(ctx: ServerContext, req: FhirRequest) -> Any:
    p = req.path_params
    if req.method == "GET" or (not req.body.strip() and req.parsed is None):
        if "id" not in p:
            raise FhirError(Category.INVALID, "$validate needs a resource in the body")
        return ctx.repo.read(p["type"], p["id"]).resource
    body = req.json_body()
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        given = [v for k, v in operation_inputs(req) if k == "resource"]
        if not given:
            raise FhirError(Category.INVALID, "$validate: Parameters has no 'resource'")
        return given[0]
    return body


def validate(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    from huitong.fhir.validation import validate_resource

    resource = _target(ctx, req)
    try:
        validate_resource(resource, expected_type=req.path_params["type"])
    except FhirError as err:
        return FhirResponse(200, error_outcome(err))
    rid = req.path_params.get("id")
    if rid is not None and isinstance(resource, dict) and resource.get("id") not in (None, rid):
        return FhirResponse(200, operation_outcome(
            [Issue(f"id {resource.get('id')} does not match the URL ({rid})",
                   expression=f"{req.path_params['type']}.id", code="value")]
        ))
    return FhirResponse(200, operation_outcome([Issue("All OK", severity="information")]))
