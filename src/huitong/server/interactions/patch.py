"""FHIR patch with JSON Patch (RFC 6902) — https://hl7.org/fhir/R4/http.html#patch.

``PATCH Type/id`` with ``Content-Type: application/json-patch+json``; FHIRPath Patch (a
``Parameters`` body) is not supported (UNSUPPORTED_MEDIA, 415). The patched resource is
validated like any update and stored as a new version (method PATCH).

Failure contract: NOT_FOUND/GONE as for read; PRECONDITION_FAILED (412) for an ``If-Match``
that is not the current version; INVALID (400) for a malformed patch document;
UNPROCESSABLE (422) when the patch cannot be applied (a failed ``test``, a missing path) or
would change ``resourceType`` or ``id``; INVALID when the result fails validation.
``PATCH Type?criteria`` patches the single match (NOT_FOUND for none, 412 for several).
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from huitong.fhir.errors import Category, FhirError
from huitong.server.interactions.conditional import at_most_one
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse, write_response
from huitong.store.repository import Transaction, WriteOutcome

__all__ = ["apply_json_patch", "conditional_patch", "patch", "patch_in"]


def apply_json_patch(current: dict[str, Any], operations: Any) -> dict[str, Any]:
    """``current`` with the JSON Patch applied (``current`` is not modified)."""
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise FhirError(Category.INVALID, "a JSON Patch document is an array of operation objects")
    try:
        result = jsonpatch.JsonPatch(operations).apply(current)
    except jsonpatch.InvalidJsonPatch as exc:
        raise FhirError(Category.INVALID, f"invalid JSON Patch: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise FhirError(Category.UNPROCESSABLE, f"the patch cannot be applied: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        # jsonpatch reports some malformed operations (a non-string path...) this way.
        raise FhirError(
            Category.INVALID, f"invalid JSON Patch ({type(exc).__name__})"
        ) from None
    if not isinstance(result, dict):
        raise FhirError(Category.UNPROCESSABLE, "the patch must leave a resource (an object)")
    for key in ("resourceType", "id"):
        if result.get(key) != current.get(key):
            raise FhirError(
                Category.UNPROCESSABLE, f"a patch may not change {key}", expression=key
            )
    return result


def patch_in(
    tx: Transaction, resource_type: str, id: str, operations: Any, *, if_match: int | None = None,
) -> WriteOutcome:
    current = tx.read(resource_type, id)
    if current is None:
        raise FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")
    if current.deleted:
        raise FhirError(Category.GONE, f"{resource_type}/{id} has been deleted")
    if if_match is not None and if_match != current.version_id:
        raise FhirError(
            Category.PRECONDITION_FAILED,
            f"version conflict: If-Match {if_match} but current version is {current.version_id}",
        )
    patched = apply_json_patch(current.resource, operations)
    return tx.update(patched, if_match=current.version_id, method="PATCH")


def patch(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    operations = req.json_body(allow=("json-patch",))
    if_match = req.if_match()
    with ctx.repo.transaction() as tx:
        outcome = patch_in(tx, p["type"], p["id"], operations, if_match=if_match)
    return write_response(req, outcome, status=200)


def conditional_patch(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    rtype = req.path_params["type"]
    operations = req.json_body(allow=("json-patch",))
    if_match = req.if_match()
    with ctx.repo.transaction() as tx:
        found = at_most_one(tx, rtype, req.criteria(), what="conditional patch")
        if found is None:
            raise FhirError(Category.NOT_FOUND, f"no {rtype} matches the criteria")
        outcome = patch_in(tx, rtype, found.id, operations, if_match=if_match)
    return write_response(req, outcome, status=200)
