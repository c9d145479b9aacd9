"""FHIR search: type, system and compartment — https://hl7.org/fhir/R4/http.html#search,
https://hl7.org/fhir/R4/search.html.

``GET Type?…`` and ``POST Type/_search`` (an ``application/x-www-form-urlencoded`` body,
merged after the URL's parameters), ``GET /?…`` and ``/_search`` across all types,
``GET Patient/123/Observation`` and ``Patient/123/*`` within a compartment. The answer is a
``searchset`` Bundle (:func:`~huitong.server.result_bundles.query_bundle`).

Parameters are parsed strictly — an unknown or unsupported parameter is INVALID (400) —
unless the client sends ``Prefer: handling=lenient``, when they are ignored (and left out
of the self link). Failure contract: INVALID for anything the parser rejects;
UNSUPPORTED_MEDIA (415) for a ``_search`` body that is not a form.
"""

from __future__ import annotations

from huitong.server.identity_scope import expand_compartment, expand_reference_params
from huitong.server.negotiation import check_body_type
from huitong.server.request import FhirRequest, ServerContext, parse_query, reject_nul
from huitong.server.response import FhirResponse
from huitong.server.result_bundles import query_bundle

__all__ = ["search_compartment", "search_system", "search_type"]


def _params(req: FhirRequest) -> list[tuple[str, str]]:
    params = req.criteria()
    if req.method == "POST" and req.body.strip():
        check_body_type(req.headers.get("content-type"), ("form",))
        params += [
            (k, v) for k, v in parse_query(req.body.decode("utf-8", "replace"))
            if k not in ("_format", "_pretty")
        ]
    return params


def _run(
    ctx: ServerContext, req: FhirRequest, resource_type: str | None, path: str,
    compartment: tuple[str, str] | None = None,
) -> FhirResponse:
    from huitong.fhir.search.parse import parse_search

    params = _params(req)
    reject_nul(params, b"")
    if ctx.identity is not None:
        params = expand_reference_params(resource_type, params, ctx.identity.sources_of)
    query = parse_search(
        resource_type, params, lenient=req.lenient(), compartment=compartment,
        default_count=ctx.settings.default_page_size, max_count=ctx.settings.max_page_size,
        base_url=req.base_url,
    )
    if not any(k == "_total" for k, _ in params):
        # A client that does not ask gets an estimate: exact for all but very large
        # results, where counting every match would cost more than the page (docs/api.md).
        query.total = "estimate"
    if ctx.identity is not None:
        query = expand_compartment(query, ctx.identity.sources_of)
    page = ctx.repo.search(query)
    return FhirResponse(200, query_bundle(req.base_url, path, query, page, now=ctx.clock()))


def search_type(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    rtype = req.path_params["type"]
    return _run(ctx, req, rtype, rtype)


def search_system(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    return _run(ctx, req, None, "")


def search_compartment(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    target = None if p["compartment"] == "*" else p["compartment"]
    path = f"{p['type']}/{p['id']}/{p['compartment']}"
    return _run(ctx, req, target, path, compartment=(p["type"], p["id"]))
