"""FHIR capabilities — https://hl7.org/fhir/R4/http.html#capabilities.

``GET /metadata`` returns the CapabilityStatement generated from the routing table, the
operations registry and the search-parameter registry
(:func:`huitong.server.capability.capability_statement`). ``mode=terminology`` is not
supported (INVALID).
"""

from __future__ import annotations

from huitong.fhir.errors import Category, FhirError
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse

__all__ = ["capabilities"]


def capabilities(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    from huitong.server.capability import capability_statement

    mode = req.param("mode")
    if mode not in (None, "full", "normative"):
        raise FhirError(Category.INVALID, f"mode={mode} is not supported", code="not-supported")
    statement = capability_statement(req.base_url, now=ctx.clock())
    if ctx.identity is None:
        # Without the identity service these answer NOT_SUPPORTED: do not advertise them.
        # (Entries are shared, cached dicts: edit copies.)
        rest = statement["rest"][0]
        rest["resource"] = [dict(entry) for entry in rest["resource"]]
        for entry in rest["resource"]:
            ops = [o for o in entry.get("operation", []) if o["name"] not in _NEEDS_IDENTITY]
            if ops:
                entry["operation"] = ops
            else:
                entry.pop("operation", None)
    return FhirResponse(200, statement)


_NEEDS_IDENTITY = frozenset({"match", "ihe-pix"})
