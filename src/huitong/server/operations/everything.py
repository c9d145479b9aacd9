"""``Patient/{id}/$everything`` — https://hl7.org/fhir/R4/patient-operation-everything.html.

A ``searchset`` Bundle: the patient, every resource in its compartment and the resources
those reference, paged (``_count``, offset) with stable links. Inputs (query string, or a
``Parameters`` body on POST): ``_since`` (instant), ``_type`` (comma-separated types),
``_count``. ``start``/``end`` (care dates) are not supported.

Failure contract: NOT_FOUND/GONE for the patient as for read; INVALID for a malformed or
unknown input (unknown inputs are ignored with ``Prefer: handling=lenient``).
"""

from __future__ import annotations

from typing import Any

from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.server.operations.parameters import operation_inputs
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse
from huitong.server.result_bundles import OFFSET_PARAM, searchset_bundle

__all__ = ["everything"]

_KNOWN = frozenset({"_since", "_type", "_count", OFFSET_PARAM})
DEFAULT_COUNT = 100


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FhirError(Category.INVALID, f"{name} must be a simple value", code="value")
    return str(value)


def everything(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    pid = req.path_params["id"]
    inputs = [(k, _as_text(k, v)) for k, v in operation_inputs(req)]
    unknown = sorted({k for k, _ in inputs if k not in _KNOWN})
    if unknown and not req.lenient():
        raise FhirError(
            Category.INVALID, f"unsupported $everything parameter(s): {', '.join(unknown)}",
            code="not-supported",
        )
    # Read the inputs (query or Parameters) through the request's validators.
    view = FhirRequest(req.method, req.path, [(k, v) for k, v in inputs if k in _KNOWN])
    settings = ctx.settings
    count = view.int_param(
        "_count", min(DEFAULT_COUNT, settings.max_page_size), maximum=settings.max_page_size
    )
    offset = view.int_param(OFFSET_PARAM, 0)
    since = view.instant_param("_since")
    types: list[str] | None = None
    raw_types = view.param("_type")
    if raw_types:
        types = [t.strip() for t in raw_types.split(",") if t.strip()]
        bad = [t for t in types if t not in resource_types()]
        if bad:
            raise FhirError(
                Category.INVALID, f"_type: unknown resource type(s) {', '.join(bad)}",
                code="value",
            )
    linked = ctx.identity.sources_of(pid) if ctx.identity is not None else []
    page = ctx.repo.everything(pid, since=since, types=types, count=count, offset=offset,
                               linked=linked)
    applied = [(k, v) for k, v in view.params if k in ("_since", "_type")]
    bundle = searchset_bundle(
        req.base_url, f"Patient/{pid}/$everything", page, applied=applied, count=count,
        offset=offset, now=ctx.clock(),
    )
    return FhirResponse(200, bundle)
