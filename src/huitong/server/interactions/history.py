"""FHIR history: instance, type and system — https://hl7.org/fhir/R4/http.html#history.

A ``history`` Bundle, newest version first, with ``total``, paging links and, per entry,
``request`` (method, url) and ``response`` (status, etag, lastModified); a delete version
has request DELETE and no resource. Parameters: ``_count``, ``_since`` (versions at or after
that instant), ``_at`` (the version current at the start of that date), and the offset
parameter used by the paging links. ``_list`` is not supported.

Failure contract: NOT_FOUND (404) for instance history of an unknown id; INVALID (400) for a
malformed parameter, or an unknown one unless ``Prefer: handling=lenient``.
"""

from __future__ import annotations

from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse
from huitong.server.result_bundles import OFFSET_PARAM, history_bundle

__all__ = ["history_instance", "history_system", "history_type"]

_KNOWN = frozenset({"_count", "_since", "_at", OFFSET_PARAM})


def _history(
    ctx: ServerContext, req: FhirRequest, path: str, rtype: str | None, rid: str | None
) -> FhirResponse:
    req.check_params(_KNOWN)
    settings = ctx.settings
    count = req.int_param("_count", settings.default_page_size, maximum=settings.max_page_size)
    offset = req.int_param(OFFSET_PARAM, 0)
    since = req.instant_param("_since")
    at = req.instant_param("_at")
    page = ctx.repo.history(rtype, rid, since=since, at=at, count=count, offset=offset)
    if count == 0:  # _count=0 asks for the total only: no page follows
        page.has_next = False
    applied = [(k, v) for k, v in req.criteria() if k in ("_since", "_at")]
    bundle = history_bundle(
        req.base_url, path, applied, page, count=count, offset=offset, now=ctx.clock()
    )
    return FhirResponse(200, bundle)


def history_instance(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    t, i = req.path_params["type"], req.path_params["id"]
    return _history(ctx, req, f"{t}/{i}/_history", t, i)


def history_type(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    t = req.path_params["type"]
    return _history(ctx, req, f"{t}/_history", t, None)


def history_system(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    return _history(ctx, req, "_history", None, None)
