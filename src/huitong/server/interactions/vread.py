"""FHIR vread — https://hl7.org/fhir/R4/http.html#vread.

NOT_FOUND (404) for an unknown resource or version, GONE (410) when that version is a delete.
"""

from __future__ import annotations

from huitong.server.interactions.read import resource_response
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse

__all__ = ["vread"]


def vread(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    return resource_response(req, ctx.repo.vread(p["type"], p["id"], int(p["vid"])))
