"""``$meta``, ``$meta-add``, ``$meta-delete`` — https://hl7.org/fhir/R4/resource-operation-meta.html,
https://hl7.org/fhir/R4/resource-operation-meta-add.html,
https://hl7.org/fhir/R4/resource-operation-meta-delete.html.

``$meta`` on an instance returns its ``Meta``; on a type or the whole system, the union of
the tags, profiles and security labels in use (computed by reading every current resource:
cost grows with the data). ``$meta-add``/``$meta-delete`` take a ``Parameters`` body with a
``meta`` (``valueMeta``) and return the resulting ``Meta``.

Deviation, documented: the specification says these two do not create a new version. The
Repository API only writes whole versions, so here they DO create one (recorded in history
as a PATCH); the content is otherwise unchanged.

Failure contract: NOT_FOUND/GONE for the instance as for read; INVALID when ``meta`` is
missing or not an object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from huitong.fhir.errors import Category, FhirError
from huitong.server.operations.parameters import operation_inputs, parameters_resource
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse
from huitong.store.repository import iter_pages

__all__ = ["meta", "meta_add", "meta_delete"]

_CODED = ("tag", "security")


def _key(coding: Any) -> tuple[Any, Any]:
    return (coding.get("system"), coding.get("code")) if isinstance(coding, dict) else (None, None)


def union_meta(metas: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The tags, profiles and security labels found in ``metas``, each once, in first-seen
    order."""
    profiles: dict[str, None] = {}
    coded: dict[str, dict[tuple[Any, Any], Any]] = {k: {} for k in _CODED}
    for m in metas:
        for p in m.get("profile", []) or []:
            profiles.setdefault(p, None)
        for kind in _CODED:
            for c in m.get(kind, []) or []:
                coded[kind].setdefault(_key(c), c)
    out: dict[str, Any] = {}
    if profiles:
        out["profile"] = list(profiles)
    for kind in _CODED:
        if coded[kind]:
            out[kind] = list(coded[kind].values())
    return out


def meta(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    if "id" in p:
        found = ctx.repo.read(p["type"], p["id"]).resource.get("meta", {})
    else:
        from huitong.fhir.search.parse import parse_search

        query = parse_search(p.get("type"), [("_count", str(ctx.settings.max_page_size))],
                             max_count=ctx.settings.max_page_size)
        query.total = "none"
        found = union_meta(s.resource.get("meta", {}) for s in iter_pages(ctx.repo, query))
    return FhirResponse(200, parameters_resource("return", "valueMeta", found))


def _meta_input(req: FhirRequest) -> dict[str, Any]:
    given = [v for k, v in operation_inputs(req) if k == "meta"]
    if not given or not isinstance(given[0], dict):
        raise FhirError(Category.INVALID, "a 'meta' parameter (valueMeta) is required")
    return given[0]


def _change(ctx: ServerContext, req: FhirRequest, *, add: bool) -> FhirResponse:
    p = req.path_params
    change = _meta_input(req)
    with ctx.repo.transaction() as tx:
        current = tx.read(p["type"], p["id"])
        if current is None:
            raise FhirError(Category.NOT_FOUND, f"{p['type']}/{p['id']} is not known")
        if current.deleted:
            raise FhirError(Category.GONE, f"{p['type']}/{p['id']} has been deleted")
        resource = current.resource
        old = resource.get("meta") or {}
        new = dict(old)
        if add:
            merged = union_meta([old, change])
            new.update(merged)
        else:
            drop_profiles = set(change.get("profile", []) or [])
            if "profile" in new:
                new["profile"] = [x for x in new["profile"] if x not in drop_profiles]
            for kind in _CODED:
                drop = {_key(c) for c in change.get(kind, []) or []}
                if kind in new:
                    new[kind] = [c for c in new[kind] if _key(c) not in drop]
            new = {k: v for k, v in new.items() if v != []}
        resource["meta"] = new
        outcome = tx.update(resource, if_match=current.version_id, method="PATCH")
    result = outcome.stored.resource.get("meta", {})
    return FhirResponse(
        200, parameters_resource("return", "valueMeta", result), stored=outcome.stored
    )


def meta_add(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    return _change(ctx, req, add=True)


def meta_delete(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    return _change(ctx, req, add=False)
