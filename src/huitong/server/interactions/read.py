"""FHIR read — https://hl7.org/fhir/R4/http.html#read.

Returns the current version with ``ETag``/``Last-Modified``. NOT_FOUND (404) for an id that
never existed, GONE (410) when the current version is a delete. ``If-None-Match`` with the
current ETag gives 304 (https://hl7.org/fhir/R4/http.html#cread). ``_summary``/``_elements``
subset the resource.
"""

from __future__ import annotations

from huitong.server.request import FhirRequest, ServerContext, parse_etag
from huitong.server.response import FhirResponse
from huitong.server.subsetting import is_subsetting, subset
from huitong.store.repository import StoredResource

__all__ = ["read", "resource_response"]


def read(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    stored = ctx.repo.read(p["type"], p["id"])
    none_match = req.headers.get("if-none-match")
    if none_match is not None and parse_etag(none_match, "If-None-Match") == stored.version_id:
        return FhirResponse(304, stored=stored)
    return resource_response(req, stored)


def resource_response(req: FhirRequest, stored: StoredResource) -> FhirResponse:
    """200 with the stored version, subsetted if the request asks for it."""
    summary, elements = req.param("_summary"), req.param("_elements")
    element_list = [e for e in elements.split(",") if e] if elements else None
    if is_subsetting(summary, element_list):
        return FhirResponse(200, subset(stored.resource, summary, element_list), stored=stored)
    return FhirResponse(200, stored.json, stored=stored)
